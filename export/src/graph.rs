//! The SFN-VAD encoder and decoder written as ONNX graphs, block by block as in `sfn-models`.
//!
//! Every op mirrors the candle code it replaces (same order of operations, same folded SFFM banks via
//! [`sfn_models::sffm::fold_experts`], same sin-cos positions), so fp32 outputs agree to float rounding.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use sfn_infer::manifest::names;
use sfn_models::appearance::AppearanceConfig;
use sfn_models::config::{FilterKind, SffmConfig, VitConfig};
use sfn_models::SfnConfig;
use tract_onnx::pb;

use crate::onnx::{attr_f, attr_i, attr_ints, attr_s, attr_t, BuildInfo, GraphBuilder, Mode};
use crate::ExportError;

/// Named weights of a checkpoint.
pub struct Weights<'a> {
    map: &'a HashMap<String, Tensor>,
}

impl<'a> Weights<'a> {
    pub fn new(map: &'a HashMap<String, Tensor>) -> Self {
        Weights { map }
    }

    fn tensor(&self, name: &str) -> Result<&Tensor, ExportError> {
        self.map.get(name).ok_or_else(|| ExportError::Weights { name: name.into(), reason: "missing from the checkpoint".into() })
    }

    /// Flat f32 values of `name`, checking its shape.
    fn get(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>, ExportError> {
        let t = self.tensor(name)?;
        if t.dims() != dims {
            return Err(ExportError::Weights { name: name.into(), reason: format!("shape {:?}, config expects {dims:?}", t.dims()) });
        }
        to_vec(t, name)
    }

    /// A Linear's weight [out, in] transposed to [in, out], and its bias.
    fn linear(&self, prefix: &str, fan_in: usize, fan_out: usize) -> Result<(Vec<f32>, Vec<f32>), ExportError> {
        let w = self.tensor(&format!("{prefix}.weight"))?;
        if w.dims() != [fan_out, fan_in] {
            return Err(ExportError::Weights { name: format!("{prefix}.weight"), reason: format!("shape {:?}, config expects [{fan_out}, {fan_in}]", w.dims()) });
        }
        let wt = w.t().and_then(|t| t.contiguous()).map_err(|e| ExportError::candle(prefix, e))?;
        Ok((to_vec(&wt, prefix)?, self.get(&format!("{prefix}.bias"), &[fan_out])?))
    }
}

fn to_vec(t: &Tensor, name: &str) -> Result<Vec<f32>, ExportError> {
    t.flatten_all().and_then(|t| t.to_dtype(candle_core::DType::F32)).and_then(|t| t.to_vec1::<f32>()).map_err(|e| ExportError::candle(name, e))
}

fn sincos(gh: usize, gw: usize, dim: usize) -> Result<Vec<f32>, ExportError> {
    let t = sfn_models::vit::sincos_2d(gh, gw, dim, &Device::Cpu).map_err(|e| ExportError::candle("sincos_2d", e))?;
    to_vec(&t, "sincos_2d")
}

/// Builder plus the weights and config: the network-level ops.
struct Net<'a> {
    g: GraphBuilder,
    w: &'a Weights<'a>,
}

impl Net<'_> {
    fn linear(&mut self, prefix: &str, x: &str, fan_in: usize, fan_out: usize) -> Result<String, ExportError> {
        let (w, b) = self.w.linear(prefix, fan_in, fan_out)?;
        Ok(self.g.matmul_const(prefix, x, &w, fan_in, fan_out, Some(&b)))
    }

    /// (x - mean) / sqrt(var + eps) over the last axis.
    fn normalize(&mut self, x: &str) -> String {
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
    fn layer_norm(&mut self, prefix: &str, x: &str, dim: usize) -> Result<String, ExportError> {
        let gamma = self.w.get(&format!("{prefix}.weight"), &[dim])?;
        let beta = self.w.get(&format!("{prefix}.bias"), &[dim])?;
        let y = self.normalize(x);
        let gn = self.g.init_f32(&format!("{prefix}.weight"), &[dim], &gamma);
        let bn = self.g.init_f32(&format!("{prefix}.bias"), &[dim], &beta);
        let y = self.g.node("Mul", &[&y, &gn], vec![]);
        Ok(self.g.node("Add", &[&y, &bn], vec![]))
    }

    fn gelu(&mut self, x: &str) -> String {
        let inv_sqrt2 = self.g.scalar(std::f32::consts::FRAC_1_SQRT_2);
        let half = self.g.scalar(0.5);
        let one = self.g.scalar(1.0);
        let s = self.g.node("Mul", &[x, &inv_sqrt2], vec![]);
        let e = self.g.node("Erf", &[&s], vec![]);
        let e1 = self.g.node("Add", &[&e, &one], vec![]);
        let xh = self.g.node("Mul", &[x, &half], vec![]);
        self.g.node("Mul", &[&xh, &e1], vec![])
    }

    fn silu(&mut self, x: &str) -> String {
        let s = self.g.node("Sigmoid", &[x], vec![]);
        self.g.node("Mul", &[x, &s], vec![])
    }

    fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.g.ints(shape);
        self.g.node("Reshape", &[x, &s], vec![])
    }

    fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.g.node("Transpose", &[x], vec![attr_ints("perm", perm)])
    }

    /// SpaceToDepth_s of [B, c, h, w] as candle's `space_to_depth` orders it (channel c s^2 + i s + j
    /// holds pixel (s y + i, s x + j) of plane c); the identity for s = 1.
    fn space_to_depth(&mut self, x: &str, c: usize, h: usize, w: usize, s: usize) -> String {
        if s == 1 {
            return x.to_string();
        }
        let (c, h, w, s) = (c as i64, h as i64, w as i64, s as i64);
        let t = self.reshape(x, &[0, c, h / s, s, w / s, s]);
        let t = self.transpose(&t, &[0, 1, 3, 5, 2, 4]);
        self.reshape(&t, &[0, c * s * s, h / s, w / s])
    }

    /// DepthToSpace_s, the inverse of [`Net::space_to_depth`]: [B, c s^2, h / s, w / s] -> [B, c, h, w].
    fn depth_to_space(&mut self, x: &str, c: usize, h: usize, w: usize, s: usize) -> String {
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
    fn local_warp(&mut self, last: &str, logits: &str, h: usize, w: usize, r: usize) -> String {
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

    fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64) -> String {
        let (s, e, a) = (self.g.ints(&[start]), self.g.ints(&[end]), self.g.ints(&[axis]));
        self.g.node("Slice", &[x, &s, &e, &a], vec![])
    }

    fn mlp(&mut self, prefix: &str, x: &str, dim: usize, hidden: usize, out: usize) -> Result<String, ExportError> {
        let h = self.linear(&format!("{prefix}.fc1"), x, dim, hidden)?;
        let h = self.gelu(&h);
        self.linear(&format!("{prefix}.fc2"), &h, hidden, out)
    }

    /// softmax(Q K^T / sqrt(d_h)) V over `t` tokens.
    fn attention(&mut self, prefix: &str, x: &str, dim: usize, heads: usize, t: usize) -> Result<String, ExportError> {
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
    fn block(&mut self, prefix: &str, x: &str, cfg: &VitConfig, t: usize) -> Result<String, ExportError> {
        let d = cfg.dim;
        let h = self.layer_norm(&format!("{prefix}.ln1"), x, d)?;
        let h = self.attention(&format!("{prefix}.attn"), &h, d, cfg.heads, t)?;
        let x = self.g.node("Add", &[x, &h], vec![]);
        let h = self.layer_norm(&format!("{prefix}.ln2"), &x, d)?;
        let h = self.mlp(&format!("{prefix}.mlp"), &h, d, d * cfg.mlp_ratio, d)?;
        Ok(self.g.node("Add", &[&x, &h], vec![]))
    }

    fn vit_stack(&mut self, prefix: &str, x: &str, cfg: &VitConfig, t: usize) -> Result<String, ExportError> {
        let mut x = x.to_string();
        for i in 0..cfg.depth {
            x = self.block(&format!("{prefix}.blocks.{i}"), &x, cfg, t)?;
        }
        self.layer_norm(&format!("{prefix}.norm"), &x, cfg.dim)
    }

    /// [B, C, H, W] -> [B, gh gw, C p p].
    fn patchify(&mut self, x: &str, cfg: &SfnConfig) -> String {
        let (gh, gw) = cfg.grid();
        let (c, p) = (cfg.image.channels as i64, cfg.patch as i64);
        let x = self.reshape(x, &[0, c, gh as i64, p, gw as i64, p]);
        let x = self.transpose(&x, &[0, 2, 4, 1, 3, 5]);
        self.reshape(&x, &[0, (gh * gw) as i64, c * p * p])
    }

    /// [B, K, N, d] -> [B, N, K d].
    fn concat_on_channels(&mut self, x: &str, k: usize, n: usize, d: usize) -> String {
        let x = self.transpose(x, &[0, 2, 1, 3]);
        self.reshape(&x, &[0, n as i64, (k * d) as i64])
    }

    /// One folded expert bank on xhat [BT, d]: SiLU(xhat W1^T + b1) (gated) W2^T (+ bias term).
    fn expert_bank(&mut self, prefix: &str, xhat: &str, gates: Option<&str>, n: usize, b: usize, d: usize) -> Result<String, ExportError> {
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
    fn sffm(&mut self, prefix: &str, x: &str, cfg: &SfnConfig, t: usize) -> Result<String, ExportError> {
        let d = cfg.decoder.vit.dim;
        let xf = self.reshape(x, &[-1, d as i64]);
        let y = self.sffm_rows(prefix, &xf, d, &cfg.sffm)?;
        Ok(self.reshape(&y, &[-1, t as i64, d as i64]))
    }

    /// The SFFM of [`Net::sffm`] on rows xf [N, d] -> [N, d].
    fn sffm_rows(&mut self, prefix: &str, xf: &str, d: usize, s: &SffmConfig) -> Result<String, ExportError> {
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
    fn memory(&mut self, prefix: &str, x: &str, cfg: &SfnConfig, t: usize) -> Result<String, ExportError> {
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

/// The per-frame encoder: frame, prev_frame -> tokens, patch_embed, motion.
pub fn encoder(cfg: &SfnConfig, w: &Weights, mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    encoder_members(cfg, &[w], mode)
}

/// The encoder of an ensemble: each member's encodings of the frame, concatenated on the last axis
/// (tokens [B, Np, K d_a], patch_embed [B, Np, K d_a], motion [B, 1 + Np, K d_m]); one member is
/// [`encoder`].
pub fn encoder_members(cfg: &SfnConfig, members: &[&Weights], mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    let first = first_member(members)?;
    let mut net = Net { g: GraphBuilder::new("sfn_vad_encoder", mode), w: first };
    let i = &cfg.image;
    let frame_dims = [None, Some(i.channels), Some(i.height), Some(i.width)];
    let frame = net.g.input(names::FRAME, &frame_dims);
    let prev = net.g.input(names::PREV_FRAME, &frame_dims);
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let (da, dm) = (cfg.appearance.dim, cfg.motion.dim);
    let mut outs: [Vec<String>; 3] = Default::default();
    for (k, w) in members.iter().enumerate() {
        net.w = w;
        net.g.set_site_prefix(&member_prefix(k));
        let (tokens, pe, motion) = encoder_body(&mut net, cfg, &frame, &prev)?;
        outs[0].push(tokens);
        outs[1].push(pe);
        outs[2].push(motion);
    }
    let [tokens, pe, motion] = outs.map(|o| concat_last(&mut net, &o));
    let k = members.len();
    net.g.output(&tokens, names::TOKENS, &[None, Some(np), Some(k * da)]);
    net.g.output(&pe, names::PATCH_EMBED, &[None, Some(np), Some(k * da)]);
    net.g.output(&motion, names::MOTION, &[None, Some(np + 1), Some(k * dm)]);
    Ok(net.g.finish("SFN-VAD per-frame encoder: appearance tokens, patch embedding, motion tokens of frame - prev_frame"))
}

/// The first of an ensemble's members (an error for none).
fn first_member<'a>(members: &[&'a Weights<'a>]) -> Result<&'a Weights<'a>, ExportError> {
    members.first().copied().ok_or_else(|| ExportError::Weights { name: "members".into(), reason: "an ensemble needs at least one network".into() })
}

/// Site names of ensemble member `k` (the first keeps the single network's).
pub fn member_prefix(k: usize) -> String {
    if k == 0 {
        String::new()
    } else {
        format!("member{k}/")
    }
}

/// The tensors concatenated on the last axis (the tensor itself when there is one).
fn concat_last(net: &mut Net, xs: &[String]) -> String {
    if xs.len() == 1 {
        return xs[0].clone();
    }
    let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
    net.g.node("Concat", &refs, vec![attr_i("axis", -1)])
}

/// One network's encodings of `frame` (and `frame - prev`): tokens, patch_embed, motion.
fn encoder_body(net: &mut Net, cfg: &SfnConfig, frame: &str, prev: &str) -> Result<(String, String, String), ExportError> {
    let i = &cfg.image;
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let cpp = i.channels * cfg.patch * cfg.patch;
    let (da, dm) = (cfg.appearance.dim, cfg.motion.dim);

    // Appearance: z = ViT(PatchEmbed(I) + pos).
    let patches = net.patchify(frame, cfg);
    let pe = net.linear("appearance.patch_embed.proj", &patches, cpp, da)?;
    let pos = sincos(gh, gw, da)?;
    let pos = net.g.init_f32("appearance.pos", &[np, da], &pos);
    let x = net.g.node("Add", &[&pe, &pos], vec![]);
    let tokens = net.vit_stack("appearance.vit", &x, &cfg.appearance, np)?;

    // Motion: m = ViT([CLS; PatchEmbed(I - I_prev)] + pos).
    let diff = net.g.node("Sub", &[frame, prev], vec![]);
    let dp = net.patchify(&diff, cfg);
    let mx = net.linear("motion.patch_embed.proj", &dp, cpp, dm)?;
    let cls = net.w.get("motion.cls", &[1, 1, dm])?;
    let cls = net.g.init_f32("motion.cls", &[1, 1, dm], &cls);
    let shape = net.g.node("Shape", &[&mx], vec![]);
    let b = net.slice(&shape, 0, 0, 1);
    let rest = net.g.ints(&[1, dm as i64]);
    let cls_shape = net.g.node("Concat", &[&b, &rest], vec![attr_i("axis", 0)]);
    let cls_b = net.g.node("Expand", &[&cls, &cls_shape], vec![]);
    let x = net.g.node("Concat", &[&cls_b, &mx], vec![attr_i("axis", 1)]);
    let mut mpos = vec![0f32; dm];
    mpos.extend(sincos(gh, gw, dm)?);
    let mpos = net.g.init_f32("motion.pos", &[np + 1, dm], &mpos);
    let x = net.g.node("Add", &[&x, &mpos], vec![]);
    let motion = net.vit_stack("motion.vit", &x, &cfg.motion, np + 1)?;
    Ok((tokens, pe, motion))
}

/// The decoder: cached encodings of a window (+ caption) -> predicted frame t+1 and text feature.
pub fn decoder(cfg: &SfnConfig, w: &Weights, mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    decoder_members(cfg, &[w], mode)
}

/// The decoder of an ensemble: member k reads its slice k of the last axis of the cached encodings
/// ([`encoder_members`]); I_hat = (1/K) sum_k I_hat^(k), and the text feature likewise. One member is
/// [`decoder`].
pub fn decoder_members(cfg: &SfnConfig, members: &[&Weights], mode: Mode) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    let first = first_member(members)?;
    let mut net = Net { g: GraphBuilder::new("sfn_vad_decoder", mode), w: first };
    let i = &cfg.image;
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let (da, dm, dt) = (cfg.appearance.dim, cfg.motion.dim, cfg.text_dim);
    let k = members.len();
    let ft = net.g.input(names::FRAME_TOKENS, &[None, Some(4), Some(np), Some(k * da)]);
    let skip = net.g.input(names::SKIP, &[None, Some(np), Some(k * da)]);
    let motion = net.g.input(names::MOTIONS, &[None, Some(3), Some(np + 1), Some(k * dm)]);
    let text = net.g.input(names::TEXT, &[None, Some(dt)]);
    let mask = net.g.input(names::TEXT_MASK, &[None, Some(1)]);
    let last = net.g.input(names::LAST_FRAME, &[None, Some(i.channels), Some(i.height), Some(i.width)]);
    // The frame head's pixel stem reads frame t-1 too (an input only where the network has a stem).
    let prev = (cfg.decoder.pixel_stem > 0).then(|| net.g.input(names::PREV_FRAME, &[None, Some(i.channels), Some(i.height), Some(i.width)]));
    let (mut frames, mut texts) = (Vec::with_capacity(k), Vec::with_capacity(k));
    for (m, w) in members.iter().enumerate() {
        net.w = w;
        net.g.set_site_prefix(&member_prefix(m));
        let part = |net: &mut Net, x: &str, axis: i64, d: usize| if k == 1 { x.to_string() } else { net.slice(x, axis, (m * d) as i64, ((m + 1) * d) as i64) };
        let inputs = DecoderInputs {
            frame_tokens: part(&mut net, &ft, 3, da),
            skip: part(&mut net, &skip, 2, da),
            motion: part(&mut net, &motion, 3, dm),
            text: text.clone(),
            mask: mask.clone(),
            last: last.clone(),
            prev: prev.clone(),
        };
        let (frame, text_pred) = decoder_body(&mut net, cfg, &inputs)?;
        frames.push(frame);
        texts.push(text_pred);
    }
    let frame = mean(&mut net, &frames);
    let text_pred = mean(&mut net, &texts);
    net.g.output(&frame, names::PRED_FRAME, &[None, Some(i.channels), Some(i.height), Some(i.width)]);
    net.g.output(&text_pred, names::PRED_TEXT, &[None, Some(dt)]);
    Ok(net.g.finish("SFN-VAD decoder: tri-modal fusion, MJAD layers each followed by the SFFM, frame and text heads"))
}

/// (x_1 + ... + x_K) / K, summed in order (the trainer's ensemble sums the same way); x_1 when K = 1.
fn mean(net: &mut Net, xs: &[String]) -> String {
    let mut sum = xs[0].clone();
    for x in &xs[1..] {
        sum = net.g.node("Add", &[&sum, x], vec![]);
    }
    if xs.len() == 1 {
        return sum;
    }
    let inv = net.g.scalar(1.0 / xs.len() as f32);
    net.g.node("Mul", &[&sum, &inv], vec![])
}

/// One member's view of the decoder's inputs.
struct DecoderInputs {
    frame_tokens: String,
    skip: String,
    motion: String,
    text: String,
    mask: String,
    last: String,
    prev: Option<String>,
}

/// One network's decoder: its cached encodings (+ caption) -> predicted frame t+1 and text feature.
fn decoder_body(net: &mut Net, cfg: &SfnConfig, inputs: &DecoderInputs) -> Result<(String, String), ExportError> {
    let i = &cfg.image;
    let (gh, gw) = cfg.grid();
    let np = gh * gw;
    let (da, dm, d, dt) = (cfg.appearance.dim, cfg.motion.dim, cfg.model_dim, cfg.text_dim);
    let DecoderInputs { frame_tokens: ft, skip, motion, text, mask, last, prev } = inputs;
    let stem_c = cfg.decoder.pixel_stem;
    let w = net.w;

    // Tri-modal fusion.
    let frames = net.concat_on_channels(ft, 4, np, da);
    let motions = net.concat_on_channels(motion, 3, np + 1, dm);
    let m = net.linear("fusion.motion_proj", &motions, 3 * dm, d)?;
    let motion_cls = net.slice(&m, 1, 0, 1);
    let motion_patches = net.slice(&m, 1, 1, 1 + np as i64);
    let fp = net.linear("fusion.frame_proj", &frames, 4 * da, d)?;
    let patches = net.g.node("Add", &[&fp, &motion_patches], vec![]);
    let pos = sincos(gh, gw, d)?;
    let pos = net.g.init_f32("fusion.pos", &[np, d], &pos);
    let patches = net.g.node("Add", &[&patches, &pos], vec![]);
    let tp = net.linear("fusion.text_proj", text, dt, d)?;
    let ax1 = net.g.ints(&[1]);
    let tp = net.g.node("Unsqueeze", &[&tp, &ax1], vec![]);
    let nc = net.w.get("fusion.no_caption", &[1, 1, d])?;
    let nc = net.g.init_f32("fusion.no_caption", &[1, 1, d], &nc);
    let ax2 = net.g.ints(&[2]);
    let mask3 = net.g.node("Unsqueeze", &[mask, &ax2], vec![]);
    let half = net.g.scalar(0.5);
    let cond = net.g.node("Greater", &[&mask3, &half], vec![]);
    let text_tok = net.g.node("Where", &[&cond, &tp, &nc], vec![]);
    let t = np + 2;
    let mut h = net.g.node("Concat", &[&text_tok, &motion_cls, &patches], vec![attr_i("axis", 1)]);

    // MJAD layers: h = Filter(Block(h)).
    let v = &cfg.decoder.vit;
    for l in 0..v.depth {
        h = net.block(&format!("decoder.layers.{l}.block"), &h, v, t)?;
        let fp = format!("decoder.layers.{l}.filter");
        h = match cfg.sffm.kind {
            FilterKind::Sffm => net.sffm(&fp, &h, cfg, t)?,
            FilterKind::Mlp => {
                let x = net.layer_norm(&format!("{fp}.ln"), &h, v.dim)?;
                net.mlp(&format!("{fp}.mlp"), &x, v.dim, v.dim * v.mlp_ratio, v.dim)?
            }
            FilterKind::Memory => net.memory(&format!("{fp}.memory"), &h, cfg, t)?,
        };
    }
    let h = net.layer_norm("decoder.norm", &h, d)?;

    // Frame head.
    let hp = net.slice(&h, 1, 2, 2 + np as i64);
    let cat = net.g.node("Concat", &[&hp, skip], vec![attr_i("axis", 2)]);
    // With a head scale s the head works at 1/s resolution on patches of p / s.
    let s = cfg.decoder.head_scale;
    let p = cfg.patch / s;
    let hid = cfg.decoder.head_channels;
    let x = net.linear("decoder.frame_head.expand", &cat, d + da, hid * p * p)?;
    let x = net.reshape(&x, &[0, gh as i64, gw as i64, hid as i64, p as i64, p as i64]);
    let x = net.transpose(&x, &[0, 3, 1, 4, 2, 5]);
    let mut x = net.reshape(&x, &[0, hid as i64, (gh * p) as i64, (gw * p) as i64]);
    let c = i.channels;
    // conv(name, input, out, in) -> LeakyReLU(Conv3x3), padding 1.
    let conv3 = |net: &mut Net, name: &str, x: &str, co: usize, ci: usize| -> Result<String, ExportError> {
        let wt = w.get(&format!("decoder.frame_head.{name}.weight"), &[co, ci, 3, 3])?;
        let b = w.get(&format!("decoder.frame_head.{name}.bias"), &[co])?;
        let y = net.g.conv(&format!("decoder.frame_head.{name}"), x, &wt, [co, ci, 3, 3], Some(&b), 1);
        Ok(net.g.node("LeakyRelu", &[&y], vec![attr_f("alpha", 0.2)]))
    };
    if let Some(prev) = &prev {
        // x_pix = [I_t, I_t - I_{t-1}] -> two 3x3 convolutions, concatenated with the token features.
        let diff = net.g.node("Sub", &[last, prev], vec![]);
        let px = net.g.node("Concat", &[last, &diff], vec![attr_i("axis", 1)]);
        let px = net.space_to_depth(&px, 2 * c, i.height, i.width, s);
        let st = conv3(net, "stem0", &px, stem_c, 2 * c * s * s)?;
        let st = conv3(net, "stem1", &st, stem_c, stem_c)?;
        x = net.g.node("Concat", &[&x, &st], vec![attr_i("axis", 1)]);
    }
    let mut x = conv3(net, "conv3", &x, hid, hid + stem_c)?;
    if prev.is_some() {
        x = conv3(net, "conv3b", &x, hid, hid)?;
    }
    let r = cfg.decoder.warp_radius;
    let warp_c = if r > 0 { sfn_models::mjad::warp_shifts(r) } else { 0 };
    let co = c * s * s + warp_c;
    let c1w = w.get("decoder.frame_head.conv1.weight", &[co, hid, 1, 1])?;
    let c1b = w.get("decoder.frame_head.conv1.bias", &[co])?;
    let frame = net.g.conv("decoder.frame_head.conv1", &x, &c1w, [co, hid, 1, 1], Some(&c1b), 0);
    let mut frame = net.depth_to_space(&frame, c, i.height, i.width, s);
    if r > 0 {
        // The warp needs head scale 1 (validated), so the head's output is [residual; shift logits].
        let residual = net.slice(&frame, 1, 0, c as i64);
        let logits = net.slice(&frame, 1, c as i64, (c + warp_c) as i64);
        let warped = net.local_warp(last, &logits, i.height, i.width, r);
        frame = net.g.node("Add", &[&warped, &residual], vec![]);
    } else if cfg.decoder.residual {
        frame = net.g.node("Add", &[&frame, last], vec![]);
    }
    // Text head on the text token.
    let t0 = net.slice(&h, 1, 0, 1);
    let t0 = net.g.node("Squeeze", &[&t0, &ax1], vec![]);
    let text_pred = net.mlp("decoder.text_head", &t0, d, d, dt)?;
    // Without a residual head `last_frame` stays an (unused) input, so every export has one signature.
    Ok((frame, text_pred))
}

/// The appearance cue's network (always fp32: a few small matrices a box):
/// box_errors = mean_d (W_d SFFM(GELU(W_e x + b_e)) + b_d - x)^2 for boxes x [N, D].
pub fn appearance(cfg: &AppearanceConfig, w: &Weights) -> Result<(pb::ModelProto, BuildInfo), ExportError> {
    cfg.validate()?;
    let mut net = Net { g: GraphBuilder::new("sfn_vad_appearance", Mode::Fp32), w };
    let (d, hid) = (cfg.input_dim(), cfg.hidden);
    let x = net.g.input(names::BOXES, &[None, Some(d)]);
    let h = net.linear("enc", &x, d, hid)?;
    let h = net.gelu(&h);
    let h = net.sffm_rows("sffm", &h, hid, &cfg.sffm)?;
    let y = net.linear("dec", &h, hid, d)?;
    let diff = net.g.node("Sub", &[&y, &x], vec![]);
    let sq = net.g.node("Mul", &[&diff, &diff], vec![]);
    let ax = net.g.ints(&[1]);
    let sum = net.g.node("ReduceSum", &[&sq, &ax], vec![attr_i("keepdims", 0)]);
    let inv = net.g.scalar(1.0 / d as f32);
    let err = net.g.node("Mul", &[&sum, &inv], vec![]);
    net.g.output(&err, names::BOX_ERRORS, &[None]);
    Ok(net.g.finish("SFN-VAD appearance cue: each moving box's descriptor reconstructed through an SFFM bottleneck; its mean squared error"))
}
