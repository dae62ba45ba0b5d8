//! The appearance cue's network: each moving box's descriptor (its crop and frame difference,
//! [`AppearanceBoxes`]) reconstructed through an SFFM bottleneck trained on normal footage. Objects
//! unlike the normal footage's (a cyclist among walkers) pass the bottleneck badly and score high.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::config::{FilterKind, SffmConfig};
use crate::scoring::AppearanceBoxes;
use crate::sffm::Sffm;
use crate::ModelError;

/// Sizes of the appearance network and the boxes it reads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppearanceConfig {
    pub boxes: AppearanceBoxes,
    /// Frame channels (1 gray, 3 RGB), as the main network's.
    pub channels: usize,
    /// Width of the code the SFFM filters.
    pub hidden: usize,
    pub sffm: SffmConfig,
}

impl AppearanceConfig {
    /// For `height` x `width` frames: the default boxes (32 pixels at 128x192, scaled with the frame's
    /// smaller ratio to that size and rounded to an even side of at least 4, at half their side), a
    /// 64-wide code, and the main network's SFFM shape (15 routed experts of bottleneck 8, top 3, one
    /// shared).
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        let sffm = SffmConfig { kind: FilterKind::Sffm, routed_experts: 15, shared_experts: 1, top_k: 3, bottleneck: 8, gate_scale: 2.0, balance_alpha: 1e-3, memory_slots: 0 };
        let mut boxes = AppearanceBoxes::default();
        let scale = (height as f64 / 128.0).min(width as f64 / 192.0);
        let side = ((boxes.window as f64 * scale / 2.0).round() as usize * 2).clamp(4, height.min(width).max(4) / 2 * 2);
        boxes.window = side;
        boxes.stride = side / 2;
        Self { boxes, channels, hidden: 64, sffm }
    }

    /// Descriptor length ([`AppearanceBoxes::dim`]).
    pub fn input_dim(&self) -> usize {
        self.boxes.dim(self.channels)
    }

    pub fn validate(&self) -> std::result::Result<(), ModelError> {
        let bad = |field: &str, reason: String| Err(ModelError::Config { field: field.into(), reason });
        if let Err(e) = self.boxes.validate() {
            return bad("boxes", e.to_string());
        }
        if self.channels == 0 || self.hidden == 0 {
            return bad("channels/hidden", "must be > 0".into());
        }
        let s = &self.sffm;
        if s.kind != FilterKind::Sffm || s.routed_experts == 0 || s.top_k == 0 || s.top_k > s.routed_experts || s.bottleneck == 0 {
            return bad("sffm", format!("needs kind sffm and 0 < top_k <= routed_experts, bottleneck > 0 (got {s:?})"));
        }
        Ok(())
    }
}

/// The reconstruction and the SFFM's balance loss of one batch of descriptors.
pub struct Reconstruction {
    /// [N, D]
    pub output: Tensor,
    pub balance_loss: Tensor,
}

/// x_hat = W_d SFFM(GELU(W_e x + b_e)) + b_d: a descriptor through the filtered code.
#[derive(Clone, Debug)]
pub struct AppearanceNet {
    enc: Linear,
    sffm: Sffm,
    dec: Linear,
    pub cfg: AppearanceConfig,
}

impl AppearanceNet {
    pub fn new(cfg: &AppearanceConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.input_dim();
        Ok(Self {
            enc: candle_nn::linear(d, cfg.hidden, vb.pp("enc"))?,
            sffm: Sffm::new(cfg.hidden, &cfg.sffm, vb.pp("sffm"))?,
            dec: candle_nn::linear(cfg.hidden, d, vb.pp("dec"))?,
            cfg: cfg.clone(),
        })
    }

    /// Descriptors [N, D] -> their reconstruction (the batch's boxes are one sequence for the balance loss).
    pub fn forward(&self, x: &Tensor) -> Result<Reconstruction> {
        let h = self.enc.forward(x)?.gelu_erf()?;
        let (n, hd) = h.dims2()?;
        let (y, routing) = self.sffm.forward(&h.reshape((1, n, hd))?)?;
        Ok(Reconstruction { output: self.dec.forward(&y.reshape((n, hd))?)?, balance_loss: routing.balance_loss })
    }

    /// e_box = mean_d (x_hat - x)^2 per descriptor: [N].
    pub fn box_errors(&self, x: &Tensor) -> Result<Tensor> {
        (self.forward(x)?.output - x)?.sqr()?.mean(D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn shapes_and_errors() {
        let cfg = AppearanceConfig::new(1, 128, 192);
        cfg.validate().unwrap();
        assert_eq!((cfg.boxes.window, cfg.boxes.stride), (32, 16));
        let small = AppearanceConfig::new(1, 32, 48);
        assert_eq!((small.boxes.window, small.boxes.stride), (8, 4));
        small.validate().unwrap();
        let vm = candle_nn::VarMap::new();
        let net = AppearanceNet::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
        let x = Tensor::randn(0f32, 1.0, (5, cfg.input_dim()), &Device::Cpu).unwrap();
        let r = net.forward(&x).unwrap();
        assert_eq!(r.output.dims(), &[5, 512]);
        let e = net.box_errors(&x).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(e.len(), 5);
        assert!(e.iter().all(|v| v.is_finite() && *v > 0.0));
        let bad = AppearanceConfig { hidden: 0, ..cfg };
        assert!(bad.validate().is_err());
    }
}
