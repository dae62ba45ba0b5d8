//! Shared transformer parts: LayerNorm with a working backward, attention, MLP, ViT block,
//! patch (un)embedding and fixed 2-D sin-cos positions.
//!
//! candle's fused `layer_norm` / `softmax_last_dim` return no gradient (see toolchain notes), so
//! everything here is composed from primitive ops that have a backward pass.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

use crate::config::VitConfig;

/// Normalises the last dimension: (x - mean) / sqrt(var + eps), no affine.
pub fn normalize_last(x: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    xc.broadcast_div(&(var + eps)?.sqrt()?)
}

/// LayerNorm y = (x - mu) / sigma * gamma + beta, differentiable in x, gamma and beta.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        normalize_last(x, 1e-5)?.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// Softmax over the last dimension, built from primitives so it back-propagates.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(x, D::Minus1)
}

/// Multi-head self-attention: softmax(Q K^T / sqrt(d_h)) V.
#[derive(Clone, Debug)]
pub struct Attention {
    qkv: Linear,
    proj: Linear,
    heads: usize,
}

impl Attention {
    pub fn new(dim: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { qkv: candle_nn::linear(dim, 3 * dim, vb.pp("qkv"))?, proj: candle_nn::linear(dim, dim, vb.pp("proj"))?, heads })
    }
}

impl Module for Attention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let dh = d / self.heads;
        let qkv = self.qkv.forward(x)?.reshape((b, t, 3, self.heads, dh))?.permute((2, 0, 3, 1, 4))?;
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let att = (q.matmul(&k.t()?)? * (1.0 / (dh as f64).sqrt()))?;
        let att = softmax_last(&att)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.proj.forward(&y)
    }
}

/// Two-layer perceptron with GELU: W2 gelu(W1 x + b1) + b2.
#[derive(Clone, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    pub fn new(dim: usize, hidden: usize, out: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { fc1: candle_nn::linear(dim, hidden, vb.pp("fc1"))?, fc2: candle_nn::linear(hidden, out, vb.pp("fc2"))? })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu_erf()?)
    }
}

/// Pre-norm ViT block: x = x + Attn(LN(x)); x = x + MLP(LN(x)).
#[derive(Clone, Debug)]
pub struct Block {
    ln1: LayerNorm,
    attn: Attention,
    ln2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    pub fn new(cfg: &VitConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            ln1: LayerNorm::new(cfg.dim, vb.pp("ln1"))?,
            attn: Attention::new(cfg.dim, cfg.heads, vb.pp("attn"))?,
            ln2: LayerNorm::new(cfg.dim, vb.pp("ln2"))?,
            mlp: Mlp::new(cfg.dim, cfg.dim * cfg.mlp_ratio, cfg.dim, vb.pp("mlp"))?,
        })
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln1.forward(x)?)?)?;
        &x + self.mlp.forward(&self.ln2.forward(&x)?)?
    }
}

/// A stack of ViT blocks followed by a final LayerNorm.
#[derive(Clone, Debug)]
pub struct VitStack {
    blocks: Vec<Block>,
    norm: LayerNorm,
}

impl VitStack {
    pub fn new(cfg: &VitConfig, vb: VarBuilder) -> Result<Self> {
        let blocks = (0..cfg.depth).map(|i| Block::new(cfg, vb.pp(format!("blocks.{i}")))).collect::<Result<_>>()?;
        Ok(Self { blocks, norm: LayerNorm::new(cfg.dim, vb.pp("norm"))? })
    }
}

impl Module for VitStack {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        self.norm.forward(&x)
    }
}

/// Cuts [B, C, H, W] into non-overlapping p x p patches: [B, (H/p)(W/p), C p p], row-major grid.
pub fn patchify(x: &Tensor, p: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (gh, gw) = (h / p, w / p);
    x.reshape((b, c, gh, p, gw, p))?.permute((0, 2, 4, 1, 3, 5))?.reshape((b, gh * gw, c * p * p))
}

/// Inverse of [`patchify`]: [B, gh gw, C p p] -> [B, C, gh p, gw p].
pub fn unpatchify(x: &Tensor, c: usize, gh: usize, gw: usize, p: usize) -> Result<Tensor> {
    let b = x.dim(0)?;
    x.reshape((b, gh, gw, c, p, p))?.permute((0, 3, 1, 4, 2, 5))?.reshape((b, c, gh * p, gw * p))
}

/// Fixed 2-D sin-cos positions (MAE style): [gh gw, dim]; half the channels encode rows, half columns.
pub fn sincos_2d(gh: usize, gw: usize, dim: usize, dev: &Device) -> Result<Tensor> {
    let quarter = (dim / 4).max(1);
    let mut out = vec![0f32; gh * gw * dim];
    for r in 0..gh {
        for c in 0..gw {
            let row = &mut out[(r * gw + c) * dim..(r * gw + c + 1) * dim];
            for (slot, pos) in [(0usize, r as f32), (1, c as f32)] {
                for i in 0..quarter {
                    let omega = 1.0 / 10000f32.powf(i as f32 / quarter as f32);
                    let base = slot * 2 * quarter;
                    if base + i < dim {
                        row[base + i] = (pos * omega).sin();
                    }
                    if base + quarter + i < dim {
                        row[base + quarter + i] = (pos * omega).cos();
                    }
                }
            }
        }
    }
    Tensor::from_vec(out, (gh * gw, dim), dev)?.to_dtype(DType::F32)
}

/// Linear patch embedding: patchify then W x + b (equivalent to a stride-p convolution).
#[derive(Clone, Debug)]
pub struct PatchEmbed {
    proj: Linear,
    patch: usize,
}

impl PatchEmbed {
    pub fn new(channels: usize, patch: usize, dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { proj: candle_nn::linear(channels * patch * patch, dim, vb.pp("proj"))?, patch })
    }
}

impl Module for PatchEmbed {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.proj.forward(&patchify(x, self.patch)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patchify_round_trips() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, (2 * 3 * 8 * 12) as f32, &dev)?.reshape((2, 3, 8, 12))?;
        let p = patchify(&x, 4)?;
        assert_eq!(p.dims(), &[2, 6, 48]);
        // The first patch of batch 0 channel 0 starts with pixel (0,0) then (0,1).
        let first: Vec<f32> = p.get(0)?.get(0)?.to_vec1()?;
        assert_eq!(&first[..5], &[0.0, 1.0, 2.0, 3.0, 12.0]);
        let back = unpatchify(&p, 3, 2, 3, 4)?;
        let diff = (back - &x)?.abs()?.sum_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        Ok(())
    }

    #[test]
    fn layer_norm_normalises() -> Result<()> {
        let x = Tensor::new(&[[1f32, 2.0, 3.0, 6.0]], &Device::Cpu)?;
        let y: Vec<f32> = normalize_last(&x, 0.0)?.flatten_all()?.to_vec1()?;
        let mean: f32 = y.iter().sum::<f32>() / 4.0;
        let var: f32 = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{y:?}");
        Ok(())
    }
}
