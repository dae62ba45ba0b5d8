//! Diagnostic without a network: next frame = last frame + a k x k linear filter over the last n
//! frames, fitted by least squares on the normal training footage, then pooled and scored as `sfn-train
//! eval` scores a model, beside plain copying at the same size. Box sizes scale with the frame (16 px
//! at 64x96). `local_linear_baseline DATA_ROOT [H W KERNEL FRAMES]` (default 240 360 3 2); `CLIPS=01,05`
//! in the environment scores only those test clips (a named selection subset).
use std::path::Path;

use sfn_models::scoring::ErrorPooling;
use sfn_trainer::baseline::{self, copy_last, LocalLinear, Predictor};
use sfn_trainer::data::{load_labels, Dataset, FrameFormat};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: local_linear_baseline DATA_ROOT [H W KERNEL FRAMES]";
    let root = Path::new(a.get(1).ok_or_else(|| anyhow::anyhow!(usage))?);
    let arg = |i: usize, d: usize| -> anyhow::Result<usize> { Ok(a.get(i).map(|s| s.parse()).transpose()?.unwrap_or(d)) };
    let (h, w, k, n) = (arg(2, 240)?, arg(3, 360)?, arg(4, 3)?, arg(5, 2)?);
    let f = FrameFormat { height: h, width: w, channels: 1 };
    let train = Dataset::open(root, "training", &f)?;
    let mut test = Dataset::open(root, "testing", &f)?;
    if let Ok(keep) = std::env::var("CLIPS") {
        let keep: Vec<&str> = keep.split(',').map(str::trim).collect();
        test.retain_clips(&keep, &root.join("testing/frames")).map_err(|e| anyhow::anyhow!("CLIPS: {e}"))?;
    }
    let labels = load_labels(root)?;
    let ll = LocalLinear::fit(&train, k, n, 2)?;
    let base = 16 * h / 64;
    let mut poolings = vec![ErrorPooling::FrameMean];
    for win in [base * 3 / 4, base, base * 5 / 4] {
        poolings.push(ErrorPooling::WindowMax { window: win, stride: win / 2 });
        poolings.push(ErrorPooling::WindowMaxZ { window: win, stride: win / 2 });
    }
    let preds: [(&str, &dyn Predictor); 2] = [("copy", &copy_last()), ("local linear", &ll)];
    println!("{h}x{w}, local linear {k}x{k} over {n} frames; AUC on the dev clips, micro, %");
    println!("{:<14} {:>12} {:<22} {:>8} {:>8}", "predictor", "train MSE", "pooling", "offline", "causal");
    for (name, p) in preds {
        let report = baseline::score(p, &train, &test, &labels, &poolings)?;
        for r in report.aucs {
            println!("{name:<14} {:>12.6} {:<22} {:>8.2} {:>8.2}", report.train_mse, r.pooling.name(), 100.0 * r.offline, 100.0 * r.causal);
        }
    }
    Ok(())
}
