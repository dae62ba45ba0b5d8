//! Several networks of one config (e.g. other seeds of the same recipe) as one predictor. A model
//! directory with `ensemble.json` names its members' weight files; its prediction is their mean.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sfn_models::{SfnConfig, SfnVad};

use crate::checkpoint::{self, CheckpointError};

/// The file that makes a model directory an ensemble.
pub const ENSEMBLE: &str = "ensemble.json";

/// `ensemble.json`: the members' weight files, relative to the model directory, each for its
/// `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleSpec {
    pub members: Vec<PathBuf>,
}

/// A predicted frame t+1 [B, C, H, W] and the predicted caption feature [B, text_dim].
pub struct Prediction {
    pub frame: Tensor,
    pub text: Tensor,
}

/// What evaluation and calibration run over a window of frames: one network or an ensemble.
pub trait Network {
    fn config(&self) -> &SfnConfig;
    /// Frames [B, 4, C, H, W] (t-3..t) and an optional caption feature -> the prediction of t+1.
    fn predict(&self, frames: &Tensor, text: Option<&Tensor>) -> candle_core::Result<Prediction>;
}

impl Network for SfnVad {
    fn config(&self) -> &SfnConfig {
        &self.cfg
    }

    fn predict(&self, frames: &Tensor, text: Option<&Tensor>) -> candle_core::Result<Prediction> {
        let out = self.forward(frames, text)?;
        Ok(Prediction { frame: out.frame, text: out.text })
    }
}

/// I_hat_{t+1} = (1/K) sum_k I_hat^(k)_{t+1}: the mean prediction of K networks (the caption feature likewise).
#[derive(Clone, Debug)]
pub struct Ensemble {
    pub members: Vec<SfnVad>,
}

impl Network for Ensemble {
    fn config(&self) -> &SfnConfig {
        &self.members[0].cfg
    }

    fn predict(&self, frames: &Tensor, text: Option<&Tensor>) -> candle_core::Result<Prediction> {
        let mut sum: Option<Prediction> = None;
        for m in &self.members {
            let p = m.predict(frames, text)?;
            sum = Some(match sum {
                None => p,
                Some(s) => Prediction { frame: (s.frame + p.frame)?, text: (s.text + p.text)? },
            });
        }
        let s = sum.ok_or_else(|| candle_core::Error::Msg("an ensemble without members".into()))?;
        let k = self.members.len() as f64;
        Ok(Prediction { frame: (s.frame / k)?, text: (s.text / k)? })
    }
}

/// `DIR/ensemble.json` if present, checked: 1 to 16 members.
pub fn spec(dir: &Path) -> Result<Option<EnsembleSpec>, CheckpointError> {
    let path = dir.join(ENSEMBLE);
    if !path.exists() {
        return Ok(None);
    }
    let spec: EnsembleSpec = checkpoint::read_json(&path)?;
    let most = sfn_infer::manifest::MAX_MEMBERS;
    if spec.members.is_empty() || spec.members.len() > most {
        return Err(CheckpointError::Mismatch { path, reason: format!("`members` names {} weight files (expected 1 to {most})", spec.members.len()) });
    }
    Ok(Some(spec))
}

/// Reads `DIR/ensemble.json` if present and loads each member (every tensor checked against `cfg`,
/// errors naming the file); None for a single network.
pub fn load(dir: &Path, cfg: &SfnConfig) -> Result<Option<Ensemble>, CheckpointError> {
    let Some(spec) = spec(dir)? else {
        return Ok(None);
    };
    let path = dir.join(ENSEMBLE);
    let mut members = Vec::with_capacity(spec.members.len());
    for file in &spec.members {
        let (m, vars) = SfnVad::init(cfg, &Device::Cpu).map_err(|source| CheckpointError::Candle { path: path.clone(), source })?;
        checkpoint::load_weights_into(&vars, &dir.join(file))?;
        members.push(m);
    }
    Ok(Some(Ensemble { members }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_members() -> candle_core::Result<()> {
        let cfg = SfnConfig::tiny();
        let dev = Device::Cpu;
        let a = crate::init::seeded_init(&cfg, 1, &dev).unwrap().0;
        let b = crate::init::seeded_init(&cfg, 2, &dev).unwrap().0;
        let i = &cfg.image;
        let x = Tensor::randn(0f32, 0.5, (2, 4, i.channels, i.height, i.width), &dev)?;
        let (pa, pb) = (a.predict(&x, None)?, b.predict(&x, None)?);
        let e = Ensemble { members: vec![a, b] }.predict(&x, None)?;
        let want = ((pa.frame.clone() + pb.frame)? * 0.5)?;
        let diff = (e.frame.clone() - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "ensemble frame is not the members' mean: {diff}");
        // Two different members: the mean differs from either.
        assert!((e.frame - pa.frame)?.abs()?.max_all()?.to_scalar::<f32>()? > 1e-4);
        let want_text = ((pa.text + pb.text)? * 0.5)?;
        assert!((e.text - want_text)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-6);
        Ok(())
    }
}
