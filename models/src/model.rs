//! The full SFN-VAD predictor: 4 frames (+ caption) -> frame t+1 (+ next caption feature).

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::config::SfnConfig;
use crate::mjad::{DecoderOutput, Mjad};
use crate::tmfe::{concat_on_channels, AppearanceEncoder, FrameTokens, MotionEncoder, TriModalFusion};

/// SFN-VAD: I_hat_{t+1}, t_hat = MJAD(Fusion(Enc(I_{t-3..t}), Motion(I_{t-2..t} - I_{t-3..t-1}), text)).
#[derive(Clone, Debug)]
pub struct SfnVad {
    pub cfg: SfnConfig,
    pub appearance: AppearanceEncoder,
    pub motion: MotionEncoder,
    pub fusion: TriModalFusion,
    pub decoder: Mjad,
}

impl SfnVad {
    pub fn new(cfg: &SfnConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::wrap)?;
        Ok(Self {
            cfg: cfg.clone(),
            appearance: AppearanceEncoder::new(cfg, vb.pp("appearance"))?,
            motion: MotionEncoder::new(cfg, vb.pp("motion"))?,
            fusion: TriModalFusion::new(cfg, vb.pp("fusion"))?,
            decoder: Mjad::new(cfg, vb.pp("decoder"))?,
        })
    }

    /// A freshly initialised model with its variables.
    pub fn init(cfg: &SfnConfig, dev: &Device) -> Result<(Self, VarMap)> {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, dev);
        let m = Self::new(cfg, vb)?;
        Ok((m, vm))
    }

    /// Encodes single frames [B, C, H, W] (the per-frame cache entry).
    pub fn encode_frame(&self, frames: &Tensor) -> Result<FrameTokens> {
        self.appearance.forward(frames)
    }

    /// Encodes one frame difference I_t - I_{t-1} [B, C, H, W] ->
    /// [B, 1 + Np, d_m].
    pub fn encode_motion(&self, diff: &Tensor) -> Result<Tensor> {
        self.motion.forward(diff)
    }

    /// Decodes cached encodings: frame tokens [B, 4, Np, d_a] (oldest first), the last frame's patch
    /// embedding [B, Np, d_a], motion tokens [B, 3, 1 + Np, d_m], caption feature [B, text_dim] or None,
    /// the last input frame [B, C, H, W] (used when `decoder.residual`), and with a pixel stem its
    /// input [B, 2C, H, W] (`mjad::pixel_input` of frames t-1 and t).
    pub fn decode(&self, frame_tokens: &Tensor, skip: &Tensor, motion: &Tensor, text: Option<&Tensor>, last: &Tensor, pixels: Option<&Tensor>) -> Result<DecoderOutput> {
        let seq = self.fusion.forward(&concat_on_channels(frame_tokens)?, &concat_on_channels(motion)?, text)?;
        self.decoder.forward(&seq, skip, self.cfg.decoder.residual.then_some(last), pixels)
    }

    /// Full forward on a window: frames [B, 4, C, H, W] (t-3..t) and optional caption feature.
    pub fn forward(&self, frames: &Tensor, text: Option<&Tensor>) -> Result<DecoderOutput> {
        let (b, k, c, h, w) = frames.dims5()?;
        if k != 4 {
            candle_core::bail!("expected 4 input frames, got {k}");
        }
        let flat = frames.reshape((b * 4, c, h, w))?;
        let enc = self.encode_frame(&flat)?;
        let np = enc.tokens.dim(1)?;
        let tokens = enc.tokens.reshape((b, 4, np, ()))?;
        let skip = enc.patch_embed.reshape((b, 4, np, ()))?.narrow(1, 3, 1)?.squeeze(1)?;
        let diffs = (frames.narrow(1, 1, 3)? - frames.narrow(1, 0, 3)?)?.reshape((b * 3, c, h, w))?;
        let motion = self.encode_motion(&diffs)?;
        let motion = motion.reshape((b, 3, np + 1, ()))?;
        let last = frames.narrow(1, 3, 1)?.squeeze(1)?;
        let pixels = if self.decoder.has_pixel_stem() { Some(crate::mjad::pixel_input(&frames.narrow(1, 2, 1)?.squeeze(1)?, &last)?) } else { None };
        self.decode(&tokens, &skip, &motion, text, &last, pixels.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterKind;

    fn window(cfg: &SfnConfig, b: usize, dev: &Device) -> Result<Tensor> {
        let i = &cfg.image;
        Tensor::randn(0f32, 0.5, (b, 4, i.channels, i.height, i.width), dev)
    }

    #[test]
    fn tiny_shapes() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = SfnConfig::tiny();
        let (m, _) = SfnVad::init(&cfg, &dev)?;
        let out = m.forward(&window(&cfg, 2, &dev)?, None)?;
        assert_eq!(out.frame.dims(), &[2, 1, 32, 48]);
        assert_eq!(out.text.dims(), &[2, cfg.text_dim]);
        assert_eq!(out.routing.len(), cfg.decoder.vit.depth);
        let np = cfg.num_patches();
        assert_eq!(out.routing[0].gates.dims(), &[2, np + 2, cfg.sffm.routed_experts]);
        let text = Tensor::randn(0f32, 1.0, (2, cfg.text_dim), &dev)?;
        let out2 = m.forward(&window(&cfg, 2, &dev)?, Some(&text))?;
        assert_eq!(out2.frame.dims(), &[2, 1, 32, 48]);
        Ok(())
    }

    #[test]
    fn frame_encoding_is_independent_of_other_frames() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = SfnConfig::tiny();
        let (m, _) = SfnVad::init(&cfg, &dev)?;
        let w = window(&cfg, 1, &dev)?;
        let (c, h, ww) = (1, 32, 48);
        let batched = m.encode_frame(&w.reshape((4, c, h, ww))?)?.tokens;
        let alone = m.encode_frame(&w.get(0)?.get(2)?.unsqueeze(0)?)?.tokens;
        let d = (batched.get(2)? - alone.get(0)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "{d}");
        Ok(())
    }

    #[test]
    fn residual_head_adds_the_last_frame() -> Result<()> {
        let dev = Device::Cpu;
        let mut cfg = SfnConfig::tiny();
        cfg.decoder.residual = false;
        let (m, vm) = SfnVad::init(&cfg, &dev)?;
        let w = window(&cfg, 2, &dev)?;
        let plain = m.forward(&w, None)?.frame;
        // Same weights, residual head: the prediction moves by exactly the last frame.
        cfg.decoder.residual = true;
        let m2 = SfnVad::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
        let res = m2.forward(&w, None)?.frame;
        let last = w.narrow(1, 3, 1)?.squeeze(1)?;
        let d = ((res - plain)? - last)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "{d}");
        Ok(())
    }

    #[test]
    fn mlp_ablation_builds() -> Result<()> {
        let dev = Device::Cpu;
        let mut cfg = SfnConfig::tiny();
        cfg.sffm.kind = FilterKind::Mlp;
        let (m, _) = SfnVad::init(&cfg, &dev)?;
        let out = m.forward(&window(&cfg, 1, &dev)?, None)?;
        assert!(out.routing.is_empty());
        assert_eq!(out.frame.dims(), &[1, 1, 32, 48]);
        Ok(())
    }

    #[test]
    fn every_parameter_gets_a_gradient() -> Result<()> {
        every_parameter_gets_a_gradient_with(SfnConfig::tiny())
    }

    #[test]
    fn every_parameter_gets_a_gradient_pixel_stem() -> Result<()> {
        let mut cfg = SfnConfig::tiny();
        cfg.decoder.pixel_stem = 4;
        every_parameter_gets_a_gradient_with(cfg)
    }

    #[test]
    fn every_parameter_gets_a_gradient_half_resolution_head() -> Result<()> {
        let mut cfg = SfnConfig::tiny();
        cfg.decoder.pixel_stem = 4;
        cfg.decoder.head_scale = 2;
        whole_frames_then_gradients(cfg)
    }

    #[test]
    fn every_parameter_gets_a_gradient_local_warp() -> Result<()> {
        let mut cfg = SfnConfig::tiny();
        cfg.decoder.pixel_stem = 4;
        cfg.decoder.warp_radius = 1;
        whole_frames_then_gradients(cfg)
    }

    /// A head option that changes the head's output channels: the config is valid, the network still
    /// predicts whole frames [B, C, H, W], and every parameter gets a gradient.
    fn whole_frames_then_gradients(cfg: SfnConfig) -> Result<()> {
        cfg.validate().unwrap();
        let (m, _) = SfnVad::init(&cfg, &Device::Cpu)?;
        assert_eq!(m.forward(&window(&cfg, 2, &Device::Cpu)?, None)?.frame.dims(), &[2, 1, 32, 48]);
        every_parameter_gets_a_gradient_with(cfg)
    }

    #[test]
    fn a_fresh_warping_head_predicts_nearly_the_last_frame() -> Result<()> {
        let dev = Device::Cpu;
        let mut cfg = SfnConfig::tiny();
        cfg.decoder.pixel_stem = 4;
        cfg.decoder.warp_radius = 1;
        let (m, _) = SfnVad::init(&cfg, &dev)?;
        // A smooth frame: the 2% of weight the prior leaves to the neighbours blurs it by little.
        let ramp = Tensor::arange(0f32, 48.0, &dev)?.affine(1.0 / 48.0, -0.5)?.broadcast_as((1, 4, 1, 32, 48))?.contiguous()?;
        let out = m.forward(&ramp, None)?.frame;
        let last = ramp.narrow(1, 3, 1)?.squeeze(1)?;
        let d = (out - last)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 0.05, "{d}");
        Ok(())
    }

    #[test]
    fn local_warp_moves_the_frame_by_the_chosen_shift() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, 12.0, &dev)?.reshape((1, 1, 3, 4))?;
        // All weight on dy = +1, dx = -1 (k = 2 * 3 + 0): I(y + 1, x - 1), borders repeated.
        let mut l = vec![0f32; 9 * 12];
        l[6 * 12..7 * 12].iter_mut().for_each(|v| *v = 100.0);
        let logits = Tensor::from_vec(l, (1, 9, 3, 4), &dev)?;
        let y: Vec<f32> = crate::mjad::local_warp(&x, &logits, 1)?.flatten_all()?.to_vec1()?;
        assert_eq!(y, vec![4.0, 4.0, 5.0, 6.0, 8.0, 8.0, 9.0, 10.0, 8.0, 8.0, 9.0, 10.0]);
        // Equal logits elsewhere but the prior: mostly the frame itself.
        let z = crate::mjad::local_warp(&x, &Tensor::zeros((1, 9, 3, 4), DType::F32, &dev)?, 1)?;
        let d = (z - &x)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 0.1, "{d}");
        Ok(())
    }

    #[test]
    fn the_warp_needs_a_residual_head_at_full_resolution() {
        let mut cfg = SfnConfig::tiny();
        cfg.decoder.warp_radius = 1;
        cfg.decoder.head_scale = 2;
        assert!(cfg.validate().unwrap_err().to_string().contains("decoder.warp_radius"));
        cfg.decoder.head_scale = 1;
        cfg.decoder.residual = false;
        assert!(cfg.validate().unwrap_err().to_string().contains("decoder.warp_radius"));
        cfg.decoder.residual = true;
        cfg.decoder.warp_radius = 4;
        assert!(cfg.validate().unwrap_err().to_string().contains("decoder.warp_radius"));
        cfg.decoder.warp_radius = 3;
        cfg.validate().unwrap();
    }

    #[test]
    fn space_to_depth_folds_blocks_into_channels_and_back() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, 2.0 * 4.0 * 6.0, &dev)?.reshape((1, 2, 4, 6))?;
        let f = crate::mjad::space_to_depth(&x, 2)?;
        assert_eq!(f.dims(), &[1, 8, 2, 3]);
        // Channel c s^2 + i s + j, position (y, x) holds pixel (2y + i, 2x + j) of plane c.
        let v: Vec<f32> = f.flatten_all()?.to_vec1()?;
        let at = |c: usize, y: usize, x: usize| v[(c * 2 + y) * 3 + x];
        assert_eq!(at(4 + 2 + 1, 1, 2), (24 + 3 * 6 + 5) as f32);
        assert_eq!(at(1, 0, 1), 3.0);
        let back = crate::mjad::depth_to_space(&f, 2)?;
        assert_eq!(back.flatten_all()?.to_vec1::<f32>()?, x.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }

    #[test]
    fn head_scale_must_divide_the_patch() {
        let mut cfg = SfnConfig::tiny();
        cfg.decoder.head_scale = 3;
        assert!(cfg.validate().unwrap_err().to_string().contains("decoder.head_scale"));
        cfg.decoder.head_scale = 16;
        assert!(cfg.validate().unwrap_err().to_string().contains("decoder.head_scale"));
    }

    fn every_parameter_gets_a_gradient_with(cfg: SfnConfig) -> Result<()> {
        let dev = Device::Cpu;
        let (m, vm) = SfnVad::init(&cfg, &dev)?;
        let frames = window(&cfg, 4, &dev)?;
        let target = Tensor::randn(0f32, 0.5, (4, 1, 32, 48), &dev)?;
        let text_in = Tensor::randn(0f32, 1.0, (4, cfg.text_dim), &dev)?;
        let text_t = Tensor::randn(0f32, 1.0, (4, cfg.text_dim), &dev)?;
        // With and without a caption, so both the text projection and the no-caption token are used.
        let mut total = Tensor::zeros((), DType::F32, &dev)?;
        for text in [None, Some(&text_in)] {
            let out = m.forward(&frames, text)?;
            let last = frames.narrow(1, 3, 1)?.squeeze(1)?;
            let l = crate::losses::total_loss(&out, &target, &last, Some(&text_t), &cfg.loss)?;
            total = (total + l.total)?;
        }
        let grads = total.backward()?;
        let data = vm.data().lock().unwrap();
        let mut missing = Vec::new();
        for (name, var) in data.iter() {
            let ok = match grads.get(var.as_tensor()) {
                Some(g) => g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
                None => false,
            };
            if !ok {
                missing.push(name.clone());
            }
        }
        missing.sort();
        assert!(missing.is_empty(), "parameters without gradient: {missing:?}");
        assert!(data.len() > 40, "only {} parameters?", data.len());
        Ok(())
    }

    #[test]
    fn every_parameter_gets_a_gradient_memory() -> Result<()> {
        let mut cfg = SfnConfig::tiny();
        cfg.sffm.kind = FilterKind::Memory;
        cfg.sffm.memory_slots = 16;
        every_parameter_gets_a_gradient_with(cfg)
    }

    #[test]
    fn memory_reads_are_sparse_mixtures_of_items() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let m = crate::sffm::Memory::new(8, 16, vb)?;
        let x = Tensor::randn(0f32, 1.0, (2, 5, 8), &dev)?;
        let y = m.forward(&x)?;
        assert_eq!(y.dims(), &[2, 5, 8]);
        // The read passes gradients back to its input.
        let xv = candle_core::Var::from_tensor(&x)?;
        let g = m.forward(xv.as_tensor())?.sqr()?.sum_all()?.backward()?;
        let gx = g.get(xv.as_tensor()).expect("gradient of the input").abs()?.sum_all()?.to_scalar::<f32>()?;
        assert!(gx > 0.0, "no gradient through the memory read");
        // Every read lies in the span of the items: with all items zeroed the read is zero.
        let items = vm.data().lock().unwrap().get("items").unwrap().clone();
        items.set(&items.zeros_like()?)?;
        let z = m.forward(&x)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(z, 0.0);
        Ok(())
    }

    #[test]
    fn paper_preset_forward() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = SfnConfig::paper();
        cfg.validate().unwrap();
        let (m, _) = SfnVad::init(&cfg, &dev)?;
        let frames = Tensor::randn(0f32, 0.5, (1, 4, 3, 448, 448), &dev)?;
        let text = Tensor::randn(0f32, 1.0, (1, 768), &dev)?;
        let out = m.forward(&frames, Some(&text))?;
        assert_eq!(out.frame.dims(), &[1, 3, 448, 448]);
        assert_eq!(out.text.dims(), &[1, 768]);
        assert_eq!(out.routing.len(), 4);
        let active: Vec<f32> = crate::sffm::active_experts(&out.routing[0].gates)?.flatten_all()?.to_vec1()?;
        assert_eq!(active.len(), 1024 + 2);
        assert!(active.iter().all(|&a| a == 7.0));
        Ok(())
    }
}
