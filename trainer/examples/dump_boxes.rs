//! Analysis aid: `dump_boxes MODEL_DIR DATA_ROOT SPLIT OUT_DIR` writes, per clip, the raw box means of the
//! prediction's squared-error map, of the speed cue, and the share of each box's pixels moving at all, at
//! least 2 and at least 3 pixels a frame (little-endian f32, [frames, boxes] each) for exploring other
//! fusions outside Rust. `SPEED_BOX=W` sets the speed boxes to W pixels at stride W/2.
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
    let mut cue = cal.speed.as_ref().map(|s| s.cue).ok_or_else(|| anyhow::anyhow!("no speed cue"))?;
    // SPEED_BOX=W overrides the speed cue's box (stride W/2), to compare box sizes.
    if let Some(w) = std::env::var("SPEED_BOX").ok().and_then(|v| v.parse::<usize>().ok()) {
        cue.window = w;
        cue.stride = w / 2;
    }
    let speed = train::speed_box_means(&ds, &cue)?;
    // Extra statistics of the speed map per box: the share of pixels moving (speed > 0) and the share
    // moving at least 2 and at least 3 pixels a frame.
    let f = &ds.format;
    let extra: Vec<Vec<[Vec<f32>; 3]>> = ds
        .clips
        .iter()
        .map(|clip| {
            (4..clip.frames.len())
                .map(|t| {
                    let m = cue.map(&clip.frames[t - 1], &clip.frames[t], f.channels, f.height, f.width)?;
                    let share = |thr: f32| {
                        let ind: Vec<f32> = m.iter().map(|&v| if v >= thr { 1.0 } else { 0.0 }).collect();
                        sfn_models::scoring::window_means(&ind, f.height, f.width, cue.window, cue.stride)
                    };
                    Ok([share(0.5), share(2.0), share(3.0)])
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
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
        let moving: Vec<Vec<f32>> = extra[c].iter().map(|e| e[0].clone()).collect();
        let fast2: Vec<Vec<f32>> = extra[c].iter().map(|e| e[1].clone()).collect();
        let fast3: Vec<Vec<f32>> = extra[c].iter().map(|e| e[2].clone()).collect();
        for (name, rows) in [("pred", &pred_means), ("speed", &speed[c]), ("moving", &moving), ("fast2", &fast2), ("fast3", &fast3)] {
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
