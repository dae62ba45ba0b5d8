//! Is the network's error more telling relative to copying's in the same place? Per frame, the 32x32
//! box means (stride 16) of the committed pooling's change-weighted prediction error (weight
//! min(1, |I_{t+1} - I_t| / 0.1)) and of copying's error (I_{t+1} - I_t)^2 under the same weight, on
//! the training clips less the model's holdout and on the test clips, plus the test clips' speed cue
//! (the model's calibration, before its frame z). Written as JSON for `lab/prototypes/relative_error.py`.
//! `cargo run --release -p sfn-lab --example relative_error -- MODEL_DIR DATA OUT.json`
use std::path::PathBuf;

use sfn_models::losses;
use sfn_models::scoring::CausalCalibration;
use sfn_trainer::checkpoint;
use sfn_trainer::data::{Dataset, INPUT_FRAMES};
use sfn_trainer::train::{batch_tensor, frame_format, speed_scores, TrainConfig};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 4, "usage: relative_error MODEL_DIR DATA OUT.json");
    let (dir, data, out) = (PathBuf::from(&a[1]), PathBuf::from(&a[2]), PathBuf::from(&a[3]));
    let loaded = checkpoint::load_model(&dir)?;
    let tcfg: TrainConfig = checkpoint::read_json(&dir.join(checkpoint::TRAIN))?;
    let cal: CausalCalibration = checkpoint::read_json(&dir.join(checkpoint::CALIBRATION))?;
    let sp = cal.speed.clone().ok_or_else(|| anyhow::anyhow!("the calibration has no speed cue"))?;
    let fmt = frame_format(&loaded.cfg);
    let mut train = Dataset::open(&data, "training", &fmt)?;
    train.remove_clips(&tcfg.holdout, &data.join("training/frames"))?;
    let test = Dataset::open(&data, "testing", &fmt)?;
    let mut result = serde_json::Map::new();
    for (split, ds) in [("training", &train), ("testing", &test)] {
        let mut clips = serde_json::Map::new();
        for (c, clip) in ds.clips.iter().enumerate() {
            let idx: Vec<(usize, usize)> = (INPUT_FRAMES..clip.frames.len()).map(|t| (c, t)).collect();
            // Per frame: [network's box means, copying's box means].
            let mut frames: Vec<[Vec<f32>; 2]> = Vec::new();
            for chunk in idx.chunks(32) {
                let x = batch_tensor(ds, chunk)?;
                let pred = loaded.model.forward(&x.narrow(1, 0, INPUT_FRAMES)?, None)?.frame;
                let target = x.narrow(1, INPUT_FRAMES, 1)?.squeeze(1)?;
                let last = x.narrow(1, INPUT_FRAMES - 1, 1)?.squeeze(1)?;
                // Box means [B, boxes], row-major (sfn_scoring::box_grid).
                let net = losses::window_means(&losses::changed_error_map(&pred, &target, &last, 100)?, 32, 16)?.to_vec2::<f32>()?;
                let copy = losses::window_means(&losses::changed_error_map(&last, &target, &last, 100)?, 32, 16)?.to_vec2::<f32>()?;
                frames.extend(net.into_iter().zip(copy).map(|(n, c)| [n, c]));
            }
            clips.insert(clip.name.clone(), serde_json::to_value(&frames)?);
            eprintln!("{split} {} done", clip.name);
        }
        result.insert(split.into(), serde_json::Value::Object(clips));
    }
    let names: Vec<String> = test.clips.iter().map(|c| c.name.clone()).collect();
    let speed: serde_json::Map<String, serde_json::Value> = names.into_iter().zip(speed_scores(&test, &sp)?).map(|(n, s)| Ok((n, serde_json::to_value(s)?))).collect::<anyhow::Result<_>>()?;
    result.insert("speed".into(), serde_json::Value::Object(speed));
    std::fs::write(&out, serde_json::to_vec(&result)?)?;
    Ok(())
}
