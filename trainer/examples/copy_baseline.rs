//! Floor without learning: score frame t+1 by its squared difference to frame t, pooled and scored
//! exactly as `sfn-train eval` scores a model. `copy_baseline DATA_ROOT [H W]`.
use std::path::Path;

use candle_core::{Device, Tensor};
use sfn_models::losses;
use sfn_models::scoring::{self, ErrorPooling, OfflineScoring};
use sfn_trainer::data::{load_labels, Dataset, FrameFormat};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let root = Path::new(&a[1]);
    let h: usize = a.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let w: usize = a.get(3).map(|s| s.parse()).transpose()?.unwrap_or(96);
    let f = FrameFormat { height: h, width: w, channels: 1 };
    let train = Dataset::open(root, "training", &f)?;
    let mut mse = 0f64;
    let mut n = 0;
    for c in &train.clips {
        for t in 1..c.frames.len() {
            mse += c.frames[t].iter().zip(&c.frames[t - 1]).map(|(a, b)| ((a - b) * (a - b)) as f64).sum::<f64>() / (h * w) as f64;
            n += 1;
        }
    }
    println!("training copy-last-frame MSE: {:.6}", mse / n as f64);
    let ds = Dataset::open(root, "testing", &f)?;
    let labels = load_labels(root)?;
    let map = |a: &[f32], b: &[f32]| -> anyhow::Result<Tensor> {
        Ok(losses::error_map(&Tensor::from_slice(a, (1, 1, h, w), &Device::Cpu)?, &Tensor::from_slice(b, (1, 1, h, w), &Device::Cpu)?)?)
    };
    for pooling in [
        ErrorPooling::FrameMean,
        ErrorPooling::WindowMax { window: 8, stride: 4 },
        ErrorPooling::WindowMax { window: 16, stride: 8 },
        ErrorPooling::WindowMaxZ { window: 16, stride: 8 },
    ] {
        // Region statistics of the copy error on the training clips (for window_max_z).
        let regions = match pooling {
            ErrorPooling::WindowMaxZ { window, stride } => {
                let mut boxes = Vec::new();
                for c in &train.clips {
                    for t in 4..c.frames.len() {
                        boxes.extend(losses::window_means(&map(&c.frames[t], &c.frames[t - 1])?, window, stride)?.to_vec2::<f32>()?);
                    }
                }
                Some(scoring::RegionStats::fit(window, stride, scoring::box_grid(h, w, window, stride), boxes.iter().map(Vec::as_slice))?)
            }
            _ => None,
        };
        // Causal: z-score against the same pooled error on the training clips, one-sided sigma 3.
        let mut train_errs = Vec::new();
        for c in &train.clips {
            for t in 4..c.frames.len() {
                train_errs.push(losses::pooled_error_with(&map(&c.frames[t], &c.frames[t - 1])?, pooling, regions.as_ref())?.to_vec1::<f32>()?[0]);
            }
        }
        let cal = scoring::CausalCalibration::fit(&train_errs, None, 3.0, 0.8, 0.2)?;
        let mut causal = Vec::new();
        let (mut all_s, mut all_l) = (Vec::new(), Vec::new());
        for c in &ds.clips {
            let mut errs = Vec::new();
            for t in 4..c.frames.len() {
                errs.push(losses::pooled_error_with(&map(&c.frames[t], &c.frames[t - 1])?, pooling, regions.as_ref())?.to_vec1::<f32>()?[0]);
            }
            all_s.extend(scoring::offline_scores(&errs, None, &OfflineScoring::default()));
            causal.extend(scoring::causal_scores(&errs, None, &cal));
            all_l.extend_from_slice(&labels[&c.name][4..]);
        }
        println!(
            "{:<20} offline micro AUC {:.2}  causal micro AUC {:.2}",
            pooling.name(),
            100.0 * scoring::roc_auc(&all_s, &all_l).unwrap_or(f64::NAN),
            100.0 * scoring::roc_auc(&causal, &all_l).unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
