//! The prediction error of a model directory (a checkpoint mid-training will do: no calibration
//! needed) on named clips of a split, against copying the last frame, whole frame and moving pixels:
//! `cargo run --release -p sfn-lab --example heldout_error -- MODEL_DIR DATA [SPLIT] [CLIPS]`
//! (default: the training split, the clips train.json holds out).
use std::path::PathBuf;

use sfn_trainer::{checkpoint, data::Dataset, eval::prediction_sums, folds::MOVING_THRESHOLD, train::frame_format, train::TrainConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        anyhow::bail!("usage: heldout_error MODEL_DIR DATA [SPLIT] [CLIP,CLIP...]");
    }
    let (dir, data) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let split = args.get(3).map(String::as_str).unwrap_or("training");
    let loaded = checkpoint::load_model(&dir)?;
    let clips: Vec<String> = match args.get(4) {
        Some(c) => c.split(',').map(String::from).collect(),
        None => checkpoint::read_json::<TrainConfig>(&dir.join(checkpoint::TRAIN))?.holdout,
    };
    let mut ds = Dataset::open(&data, split, &frame_format(&loaded.cfg))?;
    ds.retain_clips(&clips, &data.join(split).join("frames"))?;
    let (s, frames) = prediction_sums(&loaded.model, &ds, 16)?;
    let px = (frames * ds.format.height * ds.format.width) as f64;
    println!(
        "{split} clips {}: {frames} frames; frame MSE model {:.6} copy {:.6} ({:.3}x); moving pixels (|dI| > {MOVING_THRESHOLD}, {:.2}%) model {:.6} copy {:.6} ({:.3}x)",
        clips.join(","),
        s[0] / px,
        s[1] / px,
        s[0] / s[1],
        100.0 * s[4] / px,
        s[2] / s[4],
        s[3] / s[4],
        s[2] / s[3]
    );
    Ok(())
}
