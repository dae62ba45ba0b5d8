//! Analysis aid: `dump_boxes MODEL_DIR DATA_ROOT SPLIT OUT_DIR` writes, per clip, the raw box means of the
//! prediction's squared-error map and of the speed cue (little-endian f32, [frames, boxes] each) for
//! exploring other fusions outside Rust.
use std::io::Write;
use std::path::Path;

use sfn_models::losses;
use sfn_trainer::{checkpoint, data::Dataset, train};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let m = checkpoint::load_model(Path::new(&a[1]))?;
    let cal: sfn_models::scoring::CausalCalibration = checkpoint::read_json(&Path::new(&a[1]).join(checkpoint::CALIBRATION))?;
    let ds = Dataset::open(Path::new(&a[2]), &a[3], &train::frame_format(&m.cfg))?;
    let out = Path::new(&a[4]);
    std::fs::create_dir_all(out)?;
    let (win, stride) = cal.pooling.window().ok_or_else(|| anyhow::anyhow!("no window pooling"))?;
    let cue = cal.speed.as_ref().map(|s| s.cue).ok_or_else(|| anyhow::anyhow!("no speed cue"))?;
    let speed = train::speed_box_means(&ds, &cue)?;
    for (c, clip) in ds.clips.iter().enumerate() {
        let idx: Vec<(usize, usize)> = (4..clip.frames.len()).map(|t| (c, t)).collect();
        let mut pred_means = Vec::new();
        for chunk in idx.chunks(16) {
            let x = train::batch_tensor(&ds, chunk)?;
            let pred = m.model.forward(&x.narrow(1, 0, 4)?, None)?;
            let target = x.narrow(1, 4, 1)?.squeeze(1)?;
            let map = losses::error_map(&pred.frame, &target)?;
            pred_means.extend(losses::window_means(&map, win, stride)?.to_vec2::<f32>()?);
        }
        for (name, rows) in [("pred", &pred_means), ("speed", &speed[c])] {
            let mut f = std::io::BufWriter::new(std::fs::File::create(out.join(format!("{}_{name}.f32", clip.name)))?);
            for r in rows.iter() {
                for v in r {
                    f.write_all(&v.to_le_bytes())?;
                }
            }
        }
        eprintln!("{} {} frames", clip.name, pred_means.len());
    }
    Ok(())
}
