//! SFN-VAD ("MemoryOut") network in candle: one file per paper block.
//!
//! - [`tmfe`]: per-frame appearance encoder, motion encoder, tri-modal fusion;
//! - [`sffm`]: the Sparse Feature Filtering Module (MoE of bottleneck filters);
//! - [`mjad`]: the decoder (ViT blocks + SFFM) and its frame / text heads;
//! - [`losses`]: frame MSE, text cosine, motion hinge, expert balance;
//! - [`scoring`]: frame scores, offline and causal, and ROC AUC (pure Rust, shared with the edge).

pub mod appearance;
pub mod config;
pub mod losses;
pub mod mjad;
pub mod model;
pub mod sffm;
pub mod tmfe;
pub mod vit;

/// Scoring lives in its own candle-free crate so the edge runtime uses the same code.
pub use sfn_scoring as scoring;

pub use config::SfnConfig;
pub use model::SfnVad;

/// Errors of the model crate that are not candle's own.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown preset {name:?} (known: {known})")]
    UnknownPreset { name: String, known: String },
    #[error("invalid model config field `{field}`: {reason}")]
    Config { field: String, reason: String },
}
