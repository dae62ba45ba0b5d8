//! Does the network's error count where the frame changes? Per frame, the 32x32 box means (stride 16)
//! of the prediction error e = (I_hat - I)^2 and of e restricted to where frame t+1 differs from frame
//! t: hard masks |I_{t+1} - I_t| > 0.05 and > 0.1 (a pixel's change in [-1, 1] units), the 0.1 mask
//! dilated by 3 pixels, and a soft weight min(1, |I_{t+1} - I_t| / 0.1). Written as JSON for the
//! analysis in `lab/prototypes/masked_error.py` (training clips less the model's holdout, then the
//! test clips).
//! `cargo run --release -p sfn-lab --example masked_error -- MODEL_DIR DATA OUT.json`
use std::path::PathBuf;

use candle_core::{Tensor, D};
use sfn_models::losses;
use sfn_trainer::checkpoint;
use sfn_trainer::data::{Dataset, INPUT_FRAMES};
use sfn_trainer::train::{batch_tensor, frame_format, TrainConfig};

/// Box means of a [B, H, W] map: [B, boxes] (32x32 at stride 16).
fn box_means(map: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    let (b, h, w) = map.dims3()?;
    let mut out = vec![Vec::new(); b];
    for y in (0..=h - 32).step_by(16) {
        for x in (0..=w - 32).step_by(16) {
            let m: Vec<f32> = map.narrow(1, y, 32)?.narrow(2, x, 32)?.flatten_from(1)?.mean(D::Minus1)?.to_vec1()?;
            for (o, v) in out.iter_mut().zip(m) {
                o.push(v);
            }
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 4, "usage: masked_error MODEL_DIR DATA OUT.json");
    let (dir, data, out) = (PathBuf::from(&a[1]), PathBuf::from(&a[2]), PathBuf::from(&a[3]));
    let loaded = checkpoint::load_model(&dir)?;
    let tcfg: TrainConfig = checkpoint::read_json(&dir.join(checkpoint::TRAIN))?;
    let fmt = frame_format(&loaded.cfg);
    let mut train = Dataset::open(&data, "training", &fmt)?;
    train.remove_clips(&tcfg.holdout, &data.join("training/frames"))?;
    let test = Dataset::open(&data, "testing", &fmt)?;
    let names = ["error", "mask0.05", "mask0.1", "mask0.1_dilated3", "soft0.1"];
    let mut result = serde_json::Map::new();
    for (split, ds) in [("training", &train), ("testing", &test)] {
        let mut clips = serde_json::Map::new();
        for (c, clip) in ds.clips.iter().enumerate() {
            let idx: Vec<(usize, usize)> = (INPUT_FRAMES..clip.frames.len()).map(|t| (c, t)).collect();
            let mut frames: Vec<Vec<Vec<f32>>> = Vec::new();
            for chunk in idx.chunks(32) {
                let x = batch_tensor(ds, chunk)?;
                let pred = loaded.model.forward(&x.narrow(1, 0, INPUT_FRAMES)?, None)?.frame;
                let target = x.narrow(1, INPUT_FRAMES, 1)?.squeeze(1)?;
                let last = x.narrow(1, INPUT_FRAMES - 1, 1)?.squeeze(1)?;
                let e = losses::error_map(&pred, &target)?.squeeze(1)?;
                // |I_{t+1} - I_t| averaged over channels: [B, H, W].
                let change = (&target - &last)?.abs()?.mean(1)?;
                let hard = |t: f64| -> candle_core::Result<Tensor> { change.gt(t)?.to_dtype(candle_core::DType::F32) };
                let m1 = hard(0.1)?;
                let dilated = m1.unsqueeze(1)?.pad_with_zeros(2, 3, 3)?.pad_with_zeros(3, 3, 3)?.max_pool2d_with_stride(7, 1)?.squeeze(1)?;
                let soft = (&change / 0.1)?.clamp(0.0, 1.0)?;
                let maps = [e.clone(), (&e * hard(0.05)?)?, (&e * &m1)?, (&e * dilated)?, (&e * soft)?];
                let per: Vec<Vec<Vec<f32>>> = maps.iter().map(box_means).collect::<candle_core::Result<_>>()?;
                for b in 0..chunk.len() {
                    frames.push(per.iter().map(|v| v[b].clone()).collect());
                }
            }
            clips.insert(clip.name.clone(), serde_json::to_value(&frames)?);
            eprintln!("{split} {} done", clip.name);
        }
        result.insert(split.into(), serde_json::Value::Object(clips));
    }
    result.insert("variants".into(), serde_json::to_value(names)?);
    std::fs::write(&out, serde_json::to_vec(&result)?)?;
    Ok(())
}
