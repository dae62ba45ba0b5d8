//! TMFE — tri-modal feature extraction: per-frame appearance encoder, motion encoder over frame
//! differences, and the fusion of frames, motion and caption into one token sequence.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::config::SfnConfig;
use crate::vit::{sincos_2d, PatchEmbed, VitStack};

/// Appearance encoder, one frame at a time: z_t = ViT(PatchEmbed(I_t) + pos); also returns PatchEmbed(I_t).
///
/// Each frame's encoding depends on that frame alone, so a device encodes a frame once and reuses it
/// in the four windows it belongs to.
#[derive(Clone, Debug)]
pub struct AppearanceEncoder {
    embed: PatchEmbed,
    pos: Tensor,
    vit: VitStack,
}

/// One frame's cached encoding.
#[derive(Clone, Debug)]
pub struct FrameTokens {
    /// ViT output tokens [B, Np, d_a].
    pub tokens: Tensor,
    /// Patch embedding before the ViT [B, Np, d_a] (the frame head's skip for the last frame).
    pub patch_embed: Tensor,
}

impl AppearanceEncoder {
    pub fn new(cfg: &SfnConfig, vb: VarBuilder) -> Result<Self> {
        let (gh, gw) = cfg.grid();
        let a = &cfg.appearance;
        Ok(Self { embed: PatchEmbed::new(cfg.image.channels, cfg.patch, a.dim, vb.pp("patch_embed"))?, pos: sincos_2d(gh, gw, a.dim, vb.device())?, vit: VitStack::new(a, vb.pp("vit"))? })
    }

    /// frames [B, C, H, W] -> tokens and patch embedding, each [B, Np, d_a].
    pub fn forward(&self, frames: &Tensor) -> Result<FrameTokens> {
        let patch_embed = self.embed.forward(frames)?;
        let tokens = self.vit.forward(&patch_embed.broadcast_add(&self.pos)?)?;
        Ok(FrameTokens { tokens, patch_embed })
    }
}

/// Motion encoder over one frame difference: m = ViT([CLS; PatchEmbed(I_{t} - I_{t-1}) + pos]).
#[derive(Clone, Debug)]
pub struct MotionEncoder {
    embed: PatchEmbed,
    cls: Tensor,
    pos: Tensor,
    vit: VitStack,
}

impl MotionEncoder {
    pub fn new(cfg: &SfnConfig, vb: VarBuilder) -> Result<Self> {
        let (gh, gw) = cfg.grid();
        let m = &cfg.motion;
        let cls = vb.get_with_hints((1, 1, m.dim), "cls", candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 })?;
        // Fixed sin-cos positions for the patches; the CLS slot gets position zero.
        let pos = Tensor::cat(&[Tensor::zeros((1, m.dim), candle_core::DType::F32, vb.device())?, sincos_2d(gh, gw, m.dim, vb.device())?], 0)?;
        Ok(Self { embed: PatchEmbed::new(cfg.image.channels, cfg.patch, m.dim, vb.pp("patch_embed"))?, cls, pos, vit: VitStack::new(m, vb.pp("vit"))? })
    }

    /// diff [B, C, H, W] -> [B, 1 + Np, d_m] (CLS first).
    pub fn forward(&self, diff: &Tensor) -> Result<Tensor> {
        let x = self.embed.forward(diff)?;
        let b = x.dim(0)?;
        let cls = self.cls.broadcast_as((b, 1, x.dim(2)?))?;
        let x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&self.pos)?;
        self.vit.forward(&x)
    }
}

/// Tri-modal fusion: s = [W_t e_text | no-caption token; W_mc [cls_1..3]; W_f [z_1..z_4] + W_m [m_1..m_3] + pos].
#[derive(Clone, Debug)]
pub struct TriModalFusion {
    frame_proj: Linear,
    motion_proj: Linear,
    text_proj: Linear,
    no_caption: Tensor,
    pos: Tensor,
}

impl TriModalFusion {
    pub fn new(cfg: &SfnConfig, vb: VarBuilder) -> Result<Self> {
        let (gh, gw) = cfg.grid();
        let d = cfg.model_dim;
        Ok(Self {
            frame_proj: candle_nn::linear(4 * cfg.appearance.dim, d, vb.pp("frame_proj"))?,
            motion_proj: candle_nn::linear(3 * cfg.motion.dim, d, vb.pp("motion_proj"))?,
            text_proj: candle_nn::linear(cfg.text_dim, d, vb.pp("text_proj"))?,
            no_caption: vb.get_with_hints((1, 1, d), "no_caption", candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 })?,
            pos: sincos_2d(gh, gw, d, vb.device())?,
        })
    }

    /// frames [B, Np, 4 d_a] (channel-concatenated, oldest first), motion [B, 1+Np, 3 d_m],
    /// text [B, text_dim] or None -> sequence [B, 2 + Np, d] = [text, motion-CLS, patches].
    pub fn forward(&self, frames: &Tensor, motion: &Tensor, text: Option<&Tensor>) -> Result<Tensor> {
        let b = frames.dim(0)?;
        let m = self.motion_proj.forward(motion)?;
        let np = frames.dim(1)?;
        let motion_cls = m.narrow(1, 0, 1)?;
        let motion_patches = m.narrow(1, 1, np)?;
        let patches = (self.frame_proj.forward(frames)? + motion_patches)?.broadcast_add(&self.pos)?;
        let text_tok = match text {
            Some(t) => self.text_proj.forward(t)?.unsqueeze(1)?,
            None => self.no_caption.broadcast_as((b, 1, self.no_caption.dim(2)?))?.contiguous()?,
        };
        Tensor::cat(&[&text_tok, &motion_cls, &patches], 1)
    }
}

/// Concatenates per-frame token tensors [B, K, N, d] on channels -> [B, N, K d] (frame k at channels k d..).
pub fn concat_on_channels(x: &Tensor) -> Result<Tensor> {
    let (b, k, n, d) = x.dims4()?;
    x.permute((0, 2, 1, 3))?.reshape((b, n, k * d))
}
