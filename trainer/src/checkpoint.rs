//! The model directory: `config.json` (network), `model.safetensors` (weights), `train.json` (training
//! settings), `train_state.json` + `optimizer.safetensors` (resume), `calibration.json` (causal scoring).
//!
//! Every file is written to a temporary name in the same directory and renamed into place, so a
//! reader never sees a half-written file; `train_state.json` is renamed last and marks a checkpoint.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{de::DeserializeOwned, Serialize};
use sfn_models::{SfnConfig, SfnVad};

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const OPTIMIZER: &str = "optimizer.safetensors";
pub const TRAIN: &str = "train.json";
pub const STATE: &str = "train_state.json";
pub const CALIBRATION: &str = "calibration.json";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not valid JSON for this file: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {reason}")]
    Mismatch { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Candle { path: PathBuf, source: candle_core::Error },
    #[error("{path}: invalid model config: {source}")]
    Config { path: PathBuf, source: sfn_models::ModelError },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    sfn_fsio::write_atomic(path, bytes).map_err(io(path))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let s = serde_json::to_string_pretty(value).map_err(|source| CheckpointError::Json { path: path.into(), source })?;
    write_atomic(path, s.as_bytes())
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let s = fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&s).map_err(|source| CheckpointError::Json { path: path.into(), source })
}

/// Serialises named tensors to safetensors bytes.
pub fn safetensors_bytes(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let mut sorted: Vec<_> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let views: Vec<(String, Tensor)> = sorted.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    safetensors::serialize(views.iter().map(|(k, v)| (k.as_str(), v)), None).map_err(|e| CheckpointError::Mismatch { path: path.into(), reason: format!("serialising: {e}") })
}

/// Saves all variables of `vm` to `path` atomically.
pub fn save_weights(vm: &VarMap, path: &Path) -> Result<(), CheckpointError> {
    let data = vm.data().lock().map_err(|_| CheckpointError::Mismatch { path: path.into(), reason: "poisoned lock".into() })?;
    let tensors: HashMap<String, Tensor> = data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    drop(data);
    write_atomic(path, &safetensors_bytes(&tensors, path)?)
}

/// Loads named tensors from a safetensors file.
pub fn load_tensors(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    if !path.exists() {
        return Err(CheckpointError::Io { path: path.into(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found") });
    }
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|source| CheckpointError::Candle { path: path.into(), source })
}

/// Copies weights from `path` into `vm`: every variable must be present with the same shape and
/// dtype, and the file must hold no tensor the model lacks. Errors name the file and the tensor.
pub fn load_weights_into(vm: &VarMap, path: &Path) -> Result<(), CheckpointError> {
    let tensors = load_tensors(path)?;
    let data = vm.data().lock().map_err(|_| CheckpointError::Mismatch { path: path.into(), reason: "poisoned lock".into() })?;
    let mismatch = |reason: String| CheckpointError::Mismatch { path: path.into(), reason };
    let mut missing: Vec<&String> = data.keys().filter(|k| !tensors.contains_key(*k)).collect();
    missing.sort();
    if let Some(first) = missing.first() {
        return Err(mismatch(format!("{} tensor(s) the config needs are missing, first `{first}`", missing.len())));
    }
    let mut extra: Vec<&String> = tensors.keys().filter(|k| !data.contains_key(*k)).collect();
    extra.sort();
    if let Some(first) = extra.first() {
        return Err(mismatch(format!("{} tensor(s) not in the model config, first `{first}`", extra.len())));
    }
    for (name, var) in data.iter() {
        let t = &tensors[name];
        if t.shape() != var.shape() {
            return Err(mismatch(format!("tensor `{name}` has shape {:?}, the config needs {:?}", t.dims(), var.dims())));
        }
        if t.dtype() != DType::F32 {
            return Err(mismatch(format!("tensor `{name}` has dtype {:?}, expected f32", t.dtype())));
        }
        var.set(t).map_err(|source| CheckpointError::Candle { path: path.into(), source })?;
    }
    Ok(())
}

/// A trained model loaded from its directory.
pub struct LoadedModel {
    pub dir: PathBuf,
    pub cfg: SfnConfig,
    pub model: SfnVad,
    pub vars: VarMap,
    /// The members named by `ensemble.json`, when the directory has one.
    pub ensemble: Option<crate::ensemble::Ensemble>,
}

impl LoadedModel {
    /// What predicts: the ensemble where the directory names one, else the network of `model.safetensors`.
    pub fn network(&self) -> &dyn crate::ensemble::Network {
        match &self.ensemble {
            Some(e) => e,
            None => &self.model,
        }
    }
}

/// Loads `DIR/config.json` + `DIR/model.safetensors`, and the members of `DIR/ensemble.json` if present.
pub fn load_model(dir: &Path) -> Result<LoadedModel, CheckpointError> {
    let cfg_path = dir.join(CONFIG);
    let cfg: SfnConfig = read_json(&cfg_path)?;
    cfg.validate().map_err(|source| CheckpointError::Config { path: cfg_path.clone(), source })?;
    let (model, vars) = SfnVad::init(&cfg, &Device::Cpu).map_err(|source| CheckpointError::Candle { path: cfg_path, source })?;
    load_weights_into(&vars, &dir.join(WEIGHTS))?;
    let ensemble = crate::ensemble::load(dir, &cfg)?;
    Ok(LoadedModel { dir: dir.into(), cfg, model, vars, ensemble })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_and_mismatch_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SfnConfig::tiny();
        let (_, vm) = SfnVad::init(&cfg, &Device::Cpu).unwrap();
        let path = dir.path().join(WEIGHTS);
        save_weights(&vm, &path).unwrap();
        let (_, vm2) = SfnVad::init(&cfg, &Device::Cpu).unwrap();
        load_weights_into(&vm2, &path).unwrap();
        let a = vm.data().lock().unwrap()["decoder.norm.weight"].as_tensor().to_vec1::<f32>().unwrap();
        let b = vm2.data().lock().unwrap()["decoder.norm.weight"].as_tensor().to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
        // A config with another width does not fit these weights.
        let mut other = cfg.clone();
        other.model_dim = 48;
        other.decoder.vit.dim = 48;
        let (_, vm3) = SfnVad::init(&other, &Device::Cpu).unwrap();
        let err = load_weights_into(&vm3, &path).unwrap_err().to_string();
        assert!(err.contains("model.safetensors") && err.contains("shape"), "{err}");
        // Another expert count: tensors missing or extra.
        let mut other = cfg.clone();
        other.decoder.vit.depth = 3;
        let (_, vm4) = SfnVad::init(&other, &Device::Cpu).unwrap();
        let err = load_weights_into(&vm4, &path).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("layers.2"), "{err}");
        // No half-written temp files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
