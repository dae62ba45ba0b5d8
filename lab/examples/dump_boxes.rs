//! Analysis aid: `dump_boxes MODEL_DIR DATA_ROOT SPLIT OUT_DIR` writes, per clip, the raw box means of the
//! prediction's squared-error map, of the speed cue, and the share of each box's pixels moving at all, at
//! least 2 and at least 3 pixels a frame (little-endian f32, [frames, boxes] each) for exploring other
//! fusions outside Rust. `SPEED_BOX=W` sets the speed boxes to W pixels at stride W/2.
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use sfn_models::losses;
use sfn_models::scoring::window_means;
use sfn_trainer::{checkpoint, data::Dataset, train};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 5, "usage: dump_boxes MODEL_DIR DATA_ROOT SPLIT OUT_DIR");
    let m = checkpoint::load_model(Path::new(&a[1]))?;
    let cal: sfn_models::scoring::CausalCalibration = checkpoint::read_json(&Path::new(&a[1]).join(checkpoint::CALIBRATION))?;
    let ds = Dataset::open(Path::new(&a[2]), &a[3], &train::frame_format(&m.cfg))?;
    let out = Path::new(&a[4]);
    std::fs::create_dir_all(out)?;
    let (win, stride) = cal.pooling.window().ok_or_else(|| anyhow::anyhow!("no window pooling"))?;
    let mut cue = cal.speed.as_ref().map(|s| s.cue).ok_or_else(|| anyhow::anyhow!("no speed cue"))?;
    // SPEED_BOX=W overrides the speed cue's box (stride W/2), to compare box sizes.
    if let Some(w) = std::env::var("SPEED_BOX").ok().and_then(|v| v.parse::<usize>().ok()) {
        cue.window = w;
        cue.stride = w / 2;
    }
    // Each frame pair's speed map once: its box means, and the share of each box's pixels moving at
    // all (speed > 0), at least 2 and at least 3 pixels a frame.
    let f = &ds.format;
    let speed: Vec<Vec<[Vec<f32>; 4]>> = ds
        .clips
        .iter()
        .map(|clip| {
            (4..clip.frames.len())
                .into_par_iter()
                .map(|t| {
                    let m = cue.map(&clip.frames[t - 1], &clip.frames[t], f.channels, f.height, f.width)?;
                    let boxes = |v: &[f32]| window_means(v, f.height, f.width, cue.window, cue.stride);
                    let share = |thr: f32| boxes(&m.iter().map(|&v| if v >= thr { 1.0 } else { 0.0 }).collect::<Vec<f32>>());
                    Ok([boxes(&m), share(0.5), share(2.0), share(3.0)])
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut pred: Vec<Vec<Vec<f32>>> = vec![Vec::new(); ds.clips.len()];
    train::for_each_prediction(&m.model, &ds, 16, None, |c, predicted| {
        pred[c].extend(losses::window_means(&predicted.error, win, stride)?.to_vec2::<f32>()?);
        Ok(())
    })?;
    for (c, clip) in ds.clips.iter().enumerate() {
        let write = |name: &str, rows: &mut dyn Iterator<Item = &Vec<f32>>| -> anyhow::Result<()> {
            let mut w = std::io::BufWriter::new(std::fs::File::create(out.join(format!("{}_{name}.f32", clip.name)))?);
            for v in rows.flatten() {
                w.write_all(&v.to_le_bytes())?;
            }
            Ok(w.flush()?)
        };
        write("pred", &mut pred[c].iter())?;
        for (k, name) in ["speed", "moving", "fast2", "fast3"].into_iter().enumerate() {
            write(name, &mut speed[c].iter().map(|s| &s[k]))?;
        }
        eprintln!("{} {} frames", clip.name, pred[c].len());
    }
    Ok(())
}
