//! Every size of the network is a serde config value; presets are named starting points.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Input frames: size and colour channels (1 = gray, 3 = RGB).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// A plain ViT stack: width, depth, heads and MLP ratio.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VitConfig {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_ratio: usize,
}

/// What follows each decoder ViT block.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    /// The paper's Sparse Feature Filtering Module (MoE of bottleneck filters, no residual).
    Sffm,
    /// Ablation: a dense MLP (LN -> d*mlp_ratio -> d) in the same place, also without residual.
    Mlp,
    /// Comparison (the paper's Table 4): a prototype memory of `memory_slots` items read by
    /// attention with hard shrinkage (MemAE), also without residual.
    Memory,
}

fn default_memory_slots() -> usize {
    256
}

/// SFFM: routed + shared bottleneck experts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SffmConfig {
    pub kind: FilterKind,
    /// Number of routed experts N.
    pub routed_experts: usize,
    /// Number of always-on shared experts S.
    pub shared_experts: usize,
    /// Experts chosen per token.
    pub top_k: usize,
    /// Bottleneck width b of each expert (d / reduction).
    pub bottleneck: usize,
    /// The renormalised top-k gates sum to this value (ref: 2.0).
    pub gate_scale: f64,
    /// Balance-loss weight alpha (DeepSeekMoE sequence-level loss).
    pub balance_alpha: f64,
    /// Items of the prototype memory when `kind` is `memory` (default 256).
    #[serde(default = "default_memory_slots")]
    pub memory_slots: usize,
}

/// MJAD decoder and its heads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    pub vit: VitConfig,
    /// Hidden channels of the patch-expanding frame head before its 3x3 / 1x1 convolutions.
    pub head_channels: usize,
    /// Predict the change from the last input frame (I_hat = I_t + head) instead of the frame itself.
    /// Static background then costs nothing to predict and the error concentrates on motion.
    #[serde(default)]
    pub residual: bool,
    /// Channels of the frame head's pixel stem (0 = none): two 3x3 convolutions over
    /// [I_t, I_t - I_{t-1}] at full resolution, concatenated with the unpatchified
    /// decoder features, and a second 3x3 convolution after the first. Tokens know how each patch
    /// moves; only pixels know where its edges are, so without the stem the head cannot shift an edge.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pixel_stem: usize,
    /// The frame head's convolutions run at 1/`head_scale` of the frame's resolution (1, the default,
    /// or 2 or 4): the stem reads the pixels folded into channels (each s x s block of a plane
    /// becomes s^2 channels, nothing lost) and the last convolution predicts s^2 values a position,
    /// unfolded back to the full frame. The same pixels reach the head at s^2 less convolution work.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub head_scale: usize,
    /// Radius r of the frame head's local warp (0 = none): the head predicts, besides its residual, a
    /// softmax over the (2r + 1)^2 shifts of at most r pixels for every pixel, and the frame is the
    /// last one moved by that mixture of shifts plus the residual. Moving an edge by up to r pixels is
    /// then one choice of weights instead of a residual that draws the edge anew. Needs a residual
    /// head at head scale 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warp_radius: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

/// Loss weights (notes: all 1; text off while there are no captions).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    pub frame: f64,
    pub text: f64,
    pub motion: f64,
    pub balance: f64,
    /// Extra weight of the frame loss where the frame changes: each pixel's squared error counts
    /// 1 + moving * min(1, |I_{t+1} - I_t| / 0.1) times (the change map the scoring weights by); 0
    /// (the default) is the plain MSE.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub moving: f64,
    /// Weight of the gradient loss (FFP's: the L1 difference of the predicted and the true frame's
    /// absolute horizontal and vertical gradients), added to the frame loss; 0 (the default) leaves it out.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub gradient: f64,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// The whole SFN-VAD network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SfnConfig {
    pub preset: String,
    pub image: ImageConfig,
    /// Patch size shared by the appearance and motion encoders and the frame head.
    pub patch: usize,
    /// Per-frame appearance encoder (applied to each of the 4 input frames independently).
    pub appearance: VitConfig,
    /// Motion encoder over each of the 3 frame differences (ref: 128 wide, depth 4, 4 heads, ratio 2, CLS).
    pub motion: VitConfig,
    /// Width d of the fused sequence and the decoder.
    pub model_dim: usize,
    pub decoder: DecoderConfig,
    pub sffm: SffmConfig,
    /// Width of the caption embedding (384 for MiniLM, 768 for SimCSE).
    pub text_dim: usize,
    pub loss: LossConfig,
}

impl SfnConfig {
    /// Names of the built-in presets.
    pub const PRESETS: [&'static str; 3] = ["paper", "cpu-ped2", "tiny"];

    /// A named preset; unknown names give an error listing the known ones.
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        match name {
            "paper" => Ok(Self::paper()),
            "cpu-ped2" => Ok(Self::cpu_ped2()),
            "tiny" => Ok(Self::tiny()),
            other => Err(ModelError::UnknownPreset { name: other.to_string(), known: Self::PRESETS.join(", ") }),
        }
    }

    /// The paper's sizes: 448 px RGB, patch 14, 1024-d frame tokens, decoder 256 wide, 63+1 experts top-7.
    pub fn paper() -> Self {
        Self {
            preset: "paper".into(),
            image: ImageConfig { height: 448, width: 448, channels: 3 },
            patch: 14,
            // Stand-in for the frozen VLM vision tower: same token width (1024), trained here.
            appearance: VitConfig { dim: 1024, depth: 2, heads: 16, mlp_ratio: 4 },
            motion: VitConfig { dim: 128, depth: 4, heads: 4, mlp_ratio: 2 },
            model_dim: 256,
            decoder: DecoderConfig { vit: VitConfig { dim: 256, depth: 4, heads: 4, mlp_ratio: 4 }, head_channels: 32, residual: true, pixel_stem: 0, head_scale: 1, warp_radius: 0 },
            sffm: SffmConfig { kind: FilterKind::Sffm, routed_experts: 63, shared_experts: 1, top_k: 7, bottleneck: 8, gate_scale: 2.0, balance_alpha: 0.001, memory_slots: 256 },
            text_dim: 768,
            loss: LossConfig { frame: 1.0, text: 1.0, motion: 1.0, balance: 1.0, moving: 0.0, gradient: 0.0 },
        }
    }

    /// CPU preset for UCSD Ped2: gray 160x240 (Ped2 is 240x360), patch 16 (150 tokens a frame), a
    /// small ViT, a pixel stem in the frame head; trains in about 75 minutes on 2 cores. (It was 64x96
    /// with patch 8, then 128x192: a larger frame predicts normal footage better, see
    /// docs/experiments.md.)
    pub fn cpu_ped2() -> Self {
        Self {
            preset: "cpu-ped2".into(),
            image: ImageConfig { height: 160, width: 240, channels: 1 },
            patch: 16,
            appearance: VitConfig { dim: 64, depth: 1, heads: 4, mlp_ratio: 2 },
            motion: VitConfig { dim: 64, depth: 1, heads: 4, mlp_ratio: 2 },
            model_dim: 128,
            decoder: DecoderConfig {
                vit: VitConfig { dim: 128, depth: 3, heads: 4, mlp_ratio: 2 },
                // Two 3x3 convolutions over [I_t, I_t - I_{t-1}] beside the tokens: the head can move
                // edges, so the network predicts better than copying the last frame. 8 channels (not
                // 16) keep a CPU training step within 2x of the stemless network's.
                head_channels: 8,
                residual: true,
                pixel_stem: 8,
                head_scale: 1,
                warp_radius: 0,
            },
            sffm: SffmConfig { kind: FilterKind::Sffm, routed_experts: 15, shared_experts: 1, top_k: 3, bottleneck: 8, gate_scale: 2.0, balance_alpha: 0.001, memory_slots: 256 },
            text_dim: 384,
            loss: LossConfig { frame: 1.0, text: 1.0, motion: 1.0, balance: 1.0, moving: 0.0, gradient: 0.0 },
        }
    }

    /// A very small network for tests and the synthetic default job.
    pub fn tiny() -> Self {
        Self {
            preset: "tiny".into(),
            image: ImageConfig { height: 32, width: 48, channels: 1 },
            patch: 8,
            appearance: VitConfig { dim: 32, depth: 1, heads: 2, mlp_ratio: 2 },
            motion: VitConfig { dim: 16, depth: 1, heads: 2, mlp_ratio: 2 },
            model_dim: 32,
            decoder: DecoderConfig { vit: VitConfig { dim: 32, depth: 2, heads: 2, mlp_ratio: 2 }, head_channels: 8, residual: true, pixel_stem: 0, head_scale: 1, warp_radius: 0 },
            sffm: SffmConfig { kind: FilterKind::Sffm, routed_experts: 6, shared_experts: 1, top_k: 2, bottleneck: 4, gate_scale: 2.0, balance_alpha: 0.001, memory_slots: 256 },
            text_dim: 384,
            loss: LossConfig { frame: 1.0, text: 1.0, motion: 1.0, balance: 1.0, moving: 0.0, gradient: 0.0 },
        }
    }

    /// Patch grid (rows, cols).
    pub fn grid(&self) -> (usize, usize) {
        (self.image.height / self.patch, self.image.width / self.patch)
    }

    /// Number of patch tokens per frame.
    pub fn num_patches(&self) -> usize {
        let (h, w) = self.grid();
        h * w
    }

    /// Checks every size relation the network relies on; the error names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |field: &str, why: String| Err(ModelError::Config { field: field.to_string(), reason: why });
        let i = &self.image;
        if i.channels != 1 && i.channels != 3 {
            return bad("image.channels", format!("{} (must be 1 or 3)", i.channels));
        }
        if self.patch == 0 || !i.height.is_multiple_of(self.patch) || !i.width.is_multiple_of(self.patch) || i.height == 0 || i.width == 0 {
            return bad("patch", format!("{} must divide image {}x{}", self.patch, i.height, i.width));
        }
        for (name, v) in [("appearance", &self.appearance), ("motion", &self.motion), ("decoder.vit", &self.decoder.vit)] {
            if v.heads == 0 || v.dim == 0 || !v.dim.is_multiple_of(v.heads) {
                return bad(&format!("{name}.heads"), format!("{} heads must divide dim {}", v.heads, v.dim));
            }
            if v.mlp_ratio == 0 {
                return bad(&format!("{name}.mlp_ratio"), "must be >= 1".into());
            }
        }
        if self.decoder.vit.dim != self.model_dim {
            return bad("decoder.vit.dim", format!("{} must equal model_dim {}", self.decoder.vit.dim, self.model_dim));
        }
        let s = &self.sffm;
        if s.kind == FilterKind::Sffm {
            if s.routed_experts == 0 || s.top_k == 0 || s.top_k > s.routed_experts {
                return bad("sffm.top_k", format!("{} must be in 1..={} (routed_experts)", s.top_k, s.routed_experts));
            }
            if s.bottleneck == 0 {
                return bad("sffm.bottleneck", "must be >= 1".into());
            }
        }
        if s.kind == FilterKind::Memory && s.memory_slots < 2 {
            return bad("sffm.memory_slots", format!("{} must be >= 2", s.memory_slots));
        }
        if self.text_dim == 0 {
            return bad("text_dim", "must be >= 1".into());
        }
        if self.decoder.head_channels == 0 {
            return bad("decoder.head_channels", "must be >= 1".into());
        }
        let hs = self.decoder.head_scale;
        if !matches!(hs, 1 | 2 | 4) || !self.patch.is_multiple_of(hs) {
            return bad("decoder.head_scale", format!("{hs} must be 1, 2 or 4 and divide the patch {}", self.patch));
        }
        let r = self.decoder.warp_radius;
        if r > 0 && (!self.decoder.residual || hs != 1 || r > 3) {
            return bad("decoder.warp_radius", format!("{r} needs a residual head at head_scale 1 and must be at most 3"));
        }
        Ok(())
    }
}
