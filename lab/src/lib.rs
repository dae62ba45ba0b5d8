//! Research probes on detection quality, run as examples (`cargo run --release -p sfn-lab --example
//! NAME -- ARGS`); each file says what it measures. Not built by default and not part of the product.

use std::collections::BTreeMap;
use std::path::Path;

use sfn_models::scoring::CausalCalibration;
use sfn_trainer::checkpoint::{self, LoadedModel};
use sfn_trainer::data::{load_labels, Dataset};
use sfn_trainer::folds::Folds;
use sfn_trainer::train::{frame_format, TrainConfig};

/// What a probe on the dev folds reads from a model directory and the data: the model, its training
/// settings and calibration, the Ped2 folds and labels, the folds' dev clips, and the model's own
/// training clips (the training split less its holdout).
pub struct FoldSetup {
    pub loaded: LoadedModel,
    pub tcfg: TrainConfig,
    pub cal: CausalCalibration,
    pub folds: Folds,
    pub labels: BTreeMap<String, Vec<u8>>,
    pub test: Dataset,
    pub train: Dataset,
}

impl FoldSetup {
    pub fn open(dir: &Path, data: &Path) -> anyhow::Result<Self> {
        let loaded = checkpoint::load_model(dir)?;
        let tcfg: TrainConfig = checkpoint::read_json(&dir.join(checkpoint::TRAIN))?;
        let cal: CausalCalibration = checkpoint::read_json(&dir.join(checkpoint::CALIBRATION))?;
        let folds = Folds::ped2();
        let labels = load_labels(data)?;
        let fmt = frame_format(&loaded.cfg);
        let mut test = Dataset::open(data, "testing", &fmt)?;
        test.retain_clips(&folds.all_clips(), &data.join("testing/frames"))?;
        let mut train = Dataset::open(data, "training", &fmt)?;
        train.remove_clips(&tcfg.holdout, &data.join("training/frames"))?;
        Ok(Self { loaded, tcfg, cal, folds, labels, test, train })
    }
}
