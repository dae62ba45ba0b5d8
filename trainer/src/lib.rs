//! Training and evaluation of SFN-VAD on folders of video frames.

pub mod appearance;
pub mod baseline;
pub mod captions;
pub mod checkpoint;
pub mod ensemble;
pub mod eval;
pub mod export;
pub mod folds;
pub mod init;
pub mod optim;
pub mod predict;
pub mod roofline;
pub mod train;

// Footage, the synthetic scene and plots live in crates the device-side tools share without the
// training stack; re-exported under their old paths.
pub use sfn_data::dataset as data;
pub use sfn_data::synth;
pub use sfn_plots as plot;

/// Everything that can go wrong in training or evaluation; each variant names its input.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    #[error("scoring: {0}")]
    Scoring(#[from] sfn_models::scoring::ScoringError),
    #[error("tensor computation: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Usage(String),
    #[error("export: {0}")]
    Export(#[from] sfn_export::ExportError),
    #[error("exported model: {0}")]
    Infer(#[from] sfn_infer::InferError),
    #[error("training diverged at epoch {epoch} step {step}: loss {loss}")]
    Diverged { epoch: u64, step: u64, loss: f64 },
}
