//! Floor without learning: score frame t+1 by its squared difference to frame t, pooled and scored
//! exactly as `sfn-train eval` scores a model. `copy_baseline DATA_ROOT [H W]`.
use std::path::Path;

use sfn_models::scoring::ErrorPooling;
use sfn_trainer::baseline::{self, copy_last};
use sfn_trainer::data::{load_labels, Dataset, FrameFormat};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let root = Path::new(a.get(1).ok_or_else(|| anyhow::anyhow!("usage: copy_baseline DATA_ROOT [H W]"))?);
    let h: usize = a.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let w: usize = a.get(3).map(|s| s.parse()).transpose()?.unwrap_or(96);
    let f = FrameFormat { height: h, width: w, channels: 1 };
    let train = Dataset::open(root, "training", &f)?;
    let test = Dataset::open(root, "testing", &f)?;
    let labels = load_labels(root)?;
    let p = copy_last();
    let poolings = [ErrorPooling::FrameMean, ErrorPooling::WindowMax { window: 8, stride: 4 }, ErrorPooling::WindowMax { window: 16, stride: 8 }, ErrorPooling::WindowMaxZ { window: 16, stride: 8 }];
    let report = baseline::score(&p, &train, &test, &labels, &poolings)?;
    println!("training copy-last-frame MSE: {:.6}", report.train_mse);
    for r in report.aucs {
        println!("{:<20} offline micro AUC {:.2}  causal micro AUC {:.2}", r.pooling.name(), 100.0 * r.offline, 100.0 * r.causal);
    }
    Ok(())
}
