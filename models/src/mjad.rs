//! MJAD — the joint appearance decoder: ViT blocks each followed by a filter (SFFM), a patch-expanding
//! frame head with the skip of the last frame's patch embedding, and a projector for the text feature.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::config::SfnConfig;
use crate::sffm::{Filter, Routing};
use crate::vit::{unpatchify, Block, LayerNorm, Mlp};

/// One decoder layer: h = Filter(Block(h)) — the filter's output replaces the tokens.
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    block: Block,
    filter: Filter,
}

/// Frame head: I_hat = Conv1x1(LeakyReLU(Conv3x3(Unpatchify(W [h_patch; e_last])))); with a pixel
/// stem, I_hat = Conv1x1(LReLU(Conv3x3'(LReLU(Conv3x3([Unpatchify(W [h; e]); Stem(x_pix)]))))), where
/// Stem = LReLU(Conv3x3(LReLU(Conv3x3(x_pix)))) and x_pix = [I_t, I_t - I_{t-1}]: a function of one
/// frame pair, so a device computes it once per frame, beside the encoder. With a head scale s > 1
/// the convolutions run at 1/s resolution: x_pix enters folded (SpaceToDepth_s) and the output is
/// unfolded (DepthToSpace_s of C s^2 channels).
#[derive(Clone, Debug)]
pub struct FrameHead {
    expand: Linear,
    /// Pixel stem (two 3x3 convolutions) and the head's second 3x3 convolution.
    stem: Option<(Conv2d, Conv2d, Conv2d)>,
    conv3: Conv2d,
    conv1: Conv2d,
    hidden: usize,
    channels: usize,
    grid: (usize, usize),
    patch: usize,
    scale: usize,
    /// Radius of the local warp (0 = none); the head then also predicts (2r + 1)^2 shift logits.
    warp_radius: usize,
}

/// The fixed prior added to the zero shift's logit of the local warp: softmax weight 0.98 at
/// initialisation, so a warping head starts, like the residual head, as "the next frame equals the last".
pub const WARP_PRIOR: f32 = 6.0;

/// Number of shifts of a local warp of radius r: (2r + 1)^2.
pub fn warp_shifts(r: usize) -> usize {
    (2 * r + 1) * (2 * r + 1)
}

/// Shift logits the frame head predicts besides the frame: (2r + 1)^2 with a warp of radius r > 0,
/// none without one (r = 0).
pub fn warp_logits(r: usize) -> usize {
    if r > 0 {
        warp_shifts(r)
    } else {
        0
    }
}

/// Local warp: I_warp(y, x) = sum_k softmax_k(logits + prior)(y, x) I_t(y + dy_k, x + dx_k), shifts
/// k = (dy + r)(2r + 1) + (dx + r) over dy, dx in -r..=r, the last frame [B, C, H, W] padded by
/// repeating its border, logits [B, (2r + 1)^2, H, W] shared by the channels.
pub fn local_warp(last: &Tensor, logits: &Tensor, r: usize) -> Result<Tensor> {
    let (_, _, h, w) = last.dims4()?;
    let k = warp_shifts(r);
    let padded = last.pad_with_same(2, r, r)?.pad_with_same(3, r, r)?;
    let mut shifted = Vec::with_capacity(k);
    for oy in 0..2 * r + 1 {
        for ox in 0..2 * r + 1 {
            shifted.push(padded.narrow(2, oy, h)?.narrow(3, ox, w)?);
        }
    }
    let shifted = Tensor::stack(&shifted, 1)?;
    let mut prior = vec![0f32; k];
    prior[k / 2] = WARP_PRIOR;
    let prior = Tensor::from_vec(prior, (1, k, 1, 1), logits.device())?;
    let weights = candle_nn::ops::softmax(&logits.broadcast_add(&prior)?, 1)?.unsqueeze(2)?;
    shifted.broadcast_mul(&weights)?.sum(1)
}

impl FrameHead {
    pub fn new(cfg: &SfnConfig, vb: VarBuilder) -> Result<Self> {
        let p = cfg.patch;
        let hidden = cfg.decoder.head_channels;
        let scale = cfg.decoder.head_scale;
        let warp_radius = cfg.decoder.warp_radius;
        let (pixel_c, out_c) = (2 * cfg.image.channels * scale * scale, cfg.image.channels * scale * scale + warp_logits(warp_radius));
        let same = Conv2dConfig { padding: 1, ..Default::default() };
        let s = cfg.decoder.pixel_stem;
        let stem = if s > 0 {
            Some((candle_nn::conv2d(pixel_c, s, 3, same, vb.pp("stem0"))?, candle_nn::conv2d(s, s, 3, same, vb.pp("stem1"))?, candle_nn::conv2d(hidden, hidden, 3, same, vb.pp("conv3b"))?))
        } else {
            None
        };
        let conv3 = candle_nn::conv2d(hidden + s, hidden, 3, same, vb.pp("conv3"))?;
        // The last layer starts near zero: a residual head then starts from "the next frame equals the
        // last one" instead of adding random noise to every pixel (which took many epochs to unlearn).
        let conv1 = if cfg.decoder.residual {
            let c1 = vb.pp("conv1");
            let w = c1.get_with_hints((out_c, hidden, 1, 1), "weight", candle_nn::Init::Uniform { lo: -1e-3, up: 1e-3 })?;
            let b = c1.get_with_hints(out_c, "bias", candle_nn::Init::Const(0.0))?;
            Conv2d::new(w, Some(b), Default::default())
        } else {
            candle_nn::conv2d(hidden, out_c, 1, Default::default(), vb.pp("conv1"))?
        };
        Ok(Self {
            expand: candle_nn::linear(cfg.model_dim + cfg.appearance.dim, hidden * (p / scale) * (p / scale), vb.pp("expand"))?,
            stem,
            conv3,
            conv1,
            hidden,
            channels: cfg.image.channels,
            grid: cfg.grid(),
            patch: p,
            scale,
            warp_radius,
        })
    }

    /// Whether the head reads pixels (and so needs `pixels` in [`FrameHead::forward`]).
    pub fn has_pixel_stem(&self) -> bool {
        self.stem.is_some()
    }

    /// patches [B, Np, d], skip [B, Np, d_a], with a pixel stem pixels [B, 2C, H, W]
    /// ([`pixel_input`]) -> frame [B, C, H, W]; with a local warp of radius r, [B, C + (2r + 1)^2, H,
    /// W]: the residual, then the shift logits.
    pub fn forward(&self, patches: &Tensor, skip: &Tensor, pixels: Option<&Tensor>) -> Result<Tensor> {
        let x = self.expand.forward(&Tensor::cat(&[patches, skip], 2)?)?;
        let mut x = unpatchify(&x, self.hidden, self.grid.0, self.grid.1, self.patch / self.scale)?;
        let lrelu = |t: &Tensor| candle_nn::ops::leaky_relu(t, 0.2);
        if let Some((s0, s1, _)) = &self.stem {
            let Some(px) = pixels else { candle_core::bail!("the frame head's pixel stem needs the last frames") };
            let px = space_to_depth(px, self.scale)?;
            let st = lrelu(&s1.forward(&lrelu(&s0.forward(&px)?)?)?)?;
            x = Tensor::cat(&[&x, &st], 1)?;
        }
        let mut x = lrelu(&self.conv3.forward(&x)?)?;
        if let Some((_, _, c3b)) = &self.stem {
            x = lrelu(&c3b.forward(&x)?)?;
        }
        let y = depth_to_space(&self.conv1.forward(&x)?, self.scale)?;
        debug_assert_eq!(y.dim(1)?, self.channels + warp_logits(self.warp_radius));
        Ok(y)
    }
}

/// SpaceToDepth_s: [B, C, H, W] -> [B, C s^2, H/s, W/s], channel c s^2 + i s + j holding pixel
/// (s y + i, s x + j) of plane c (the identity for s = 1).
pub fn space_to_depth(x: &Tensor, s: usize) -> Result<Tensor> {
    if s == 1 {
        return Ok(x.clone());
    }
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h / s, s, w / s, s))?.permute((0, 1, 3, 5, 2, 4))?.reshape((b, c * s * s, h / s, w / s))
}

/// DepthToSpace_s, the inverse of [`space_to_depth`]: [B, C s^2, H, W] -> [B, C, H s, W s].
pub fn depth_to_space(x: &Tensor, s: usize) -> Result<Tensor> {
    if s == 1 {
        return Ok(x.clone());
    }
    let (b, cs, h, w) = x.dims4()?;
    let c = cs / (s * s);
    x.reshape((b, c, s, s, h, w))?.permute((0, 1, 4, 2, 5, 3))?.reshape((b, c, h * s, w * s))
}

/// The pixel stem's input from frames t-1 and t [B, C, H, W]: x_pix = [I_t, I_t - I_{t-1}].
pub fn pixel_input(prev: &Tensor, last: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[last, &(last - prev)?], 1)
}

/// Decoder output.
#[derive(Clone, Debug)]
pub struct DecoderOutput {
    /// Predicted frame t+1 [B, C, H, W].
    pub frame: Tensor,
    /// Predicted text feature of the next clip [B, text_dim].
    pub text: Tensor,
    /// Routing of each SFFM layer (empty for the MLP ablation).
    pub routing: Vec<Routing>,
}

/// MJAD: h_l = SFFM_l(Block_l(h_{l-1})), then the frame head on patch tokens and the text projector
/// on the text token.
#[derive(Clone, Debug)]
pub struct Mjad {
    layers: Vec<DecoderLayer>,
    norm: LayerNorm,
    frame_head: FrameHead,
    text_head: Mlp,
}

impl Mjad {
    pub fn new(cfg: &SfnConfig, vb: VarBuilder) -> Result<Self> {
        let v = &cfg.decoder.vit;
        let layers = (0..v.depth)
            .map(|i| {
                let l = vb.pp(format!("layers.{i}"));
                Ok(DecoderLayer { block: Block::new(v, l.pp("block"))?, filter: Filter::new(v.dim, v.mlp_ratio, &cfg.sffm, l.pp("filter"))? })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            norm: LayerNorm::new(cfg.model_dim, vb.pp("norm"))?,
            frame_head: FrameHead::new(cfg, vb.pp("frame_head"))?,
            text_head: Mlp::new(cfg.model_dim, cfg.model_dim, cfg.text_dim, vb.pp("text_head"))?,
        })
    }

    /// Whether the frame head reads pixels.
    pub fn has_pixel_stem(&self) -> bool {
        self.frame_head.has_pixel_stem()
    }

    /// seq [B, 2 + Np, d] (text, motion-CLS, patches), skip [B, Np, d_a], the last input frame
    /// [B, C, H, W] when the head is residual, and the pixel stem's input -> prediction.
    pub fn forward(&self, seq: &Tensor, skip: &Tensor, last: Option<&Tensor>, pixels: Option<&Tensor>) -> Result<DecoderOutput> {
        let mut h = seq.clone();
        let mut routing = Vec::new();
        for layer in &self.layers {
            h = layer.block.forward(&h)?;
            let (y, r) = layer.filter.forward(&h)?;
            h = y;
            routing.extend(r);
        }
        let h = self.norm.forward(&h)?;
        let np = skip.dim(1)?;
        let head = self.frame_head.forward(&h.narrow(1, 2, np)?, skip, pixels)?;
        let r = self.frame_head.warp_radius;
        let frame = match last {
            Some(last) if r > 0 => {
                let c = self.frame_head.channels;
                (local_warp(last, &head.narrow(1, c, warp_shifts(r))?, r)? + head.narrow(1, 0, c)?)?
            }
            Some(last) => (head + last)?,
            None => head,
        };
        let text = self.text_head.forward(&h.narrow(1, 0, 1)?.squeeze(1)?)?;
        Ok(DecoderOutput { frame, text, routing })
    }
}
