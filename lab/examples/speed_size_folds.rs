//! The speed cue's sizes chosen on the folds: a grid of search radii, block sides and box sizes, each
//! setting alone and fused with the model's network error (the model's fusion, weight and margin),
//! calibrated on the model's training clips (train.json's clips less its holdout) as the model's own
//! cue is. In each family the setting with the highest mean of offline and causal micro AUC on one
//! fold (the committed setting listed first wins ties) is reported on the other.
//! `cargo run --release -p sfn-lab --example speed_size_folds -- MODEL_DIR DATA REPORT.json`
use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use sfn_models::scoring::{self, FrameZ, SpeedCalibration, SpeedCue};
use sfn_trainer::data::{Dataset, INPUT_FRAMES};
use sfn_trainer::folds::{figures, Candidate, FoldFigures};
use sfn_trainer::predict::dataset_errors;

const RADII: [usize; 4] = [3, 4, 5, 6];
const BLOCKS: [usize; 3] = [12, 15, 18];
const BOXES: [(usize, usize); 3] = [(32, 16), (40, 20), (48, 24)];

/// Box means of every scored frame pair of every clip for each box size of BOXES, from one speed map
/// per pair: `[box][clip][frame][box mean]`.
fn box_means(ds: &Dataset, radius: usize, block: usize, margin: f32) -> anyhow::Result<Vec<Vec<Vec<Vec<f32>>>>> {
    let f = &ds.format;
    let mut out = vec![Vec::new(); BOXES.len()];
    for clip in &ds.clips {
        let per: Vec<Vec<Vec<f32>>> = (INPUT_FRAMES..clip.frames.len())
            .into_par_iter()
            .map(|t| -> anyhow::Result<Vec<Vec<f32>>> {
                let map = scoring::speed_map(&clip.frames[t - 1], &clip.frames[t], f.channels, f.height, f.width, radius, block, margin)?;
                Ok(BOXES.iter().map(|&(w, s)| scoring::window_means(&map, f.height, f.width, w, s)).collect())
            })
            .collect::<anyhow::Result<_>>()?;
        for (b, o) in out.iter_mut().enumerate() {
            o.push(per.iter().map(|m| m[b].clone()).collect());
        }
    }
    Ok(out)
}

/// The best candidate of `rows` on fold `choose` (highest selection value, first wins ties).
fn best(rows: &[[FoldFigures; 2]], choose: usize) -> usize {
    let mut b = 0;
    for (i, r) in rows.iter().enumerate() {
        if r[choose].selection_value() > rows[b][choose].selection_value() {
            b = i;
        }
    }
    b
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        anyhow::bail!("usage: speed_size_folds MODEL_DIR DATA REPORT.json");
    }
    let (dir, data, report) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]), PathBuf::from(&args[3]));
    let sfn_lab::FoldSetup { loaded, tcfg: _, cal, folds, labels, test, train } = sfn_lab::FoldSetup::open(&dir, &data)?;
    let own = cal.speed.clone().ok_or_else(|| anyhow::anyhow!("{}/calibration.json: no speed cue", dir.display()))?;
    let pz = own.frame_z.ok_or_else(|| anyhow::anyhow!("{}/calibration.json: the speed cue has no frame_z (a z fusion's)", dir.display()))?.prediction;
    let (h, w) = (test.format.height, test.format.width);
    // The network's pooled error on the dev clips, held over frames as the camera holds it.
    let pred: Vec<Vec<f32>> =
        dataset_errors(loaded.network(), &test, 16, &[cal.pooling], cal.regions.as_ref(), None)?.visual.remove(0).iter().map(|c| scoring::persist(c, cal.pooling.frames())).collect();
    let names: Vec<String> = test.clips.iter().map(|c| c.name.clone()).collect();
    let stream = |v: &[Vec<f32>]| -> BTreeMap<String, Vec<f32>> { names.iter().cloned().zip(v.iter().cloned()).collect() };
    let mut settings: Vec<SpeedCue> = Vec::new();
    for &radius in &RADII {
        for &block in &BLOCKS {
            for &(window, stride) in &BOXES {
                settings.push(SpeedCue { radius, block, window, stride, ..own.cue });
            }
        }
    }
    // The committed setting first: it wins ties.
    let first = settings.iter().position(|c| *c == own.cue).ok_or_else(|| anyhow::anyhow!("the committed cue {} is not in the grid", own.cue.name()))?;
    settings.swap(0, first);
    let mut rows: BTreeMap<String, ([FoldFigures; 2], [FoldFigures; 2])> = BTreeMap::new();
    for &radius in &RADII {
        for &block in &BLOCKS {
            let t0 = std::time::Instant::now();
            let (tr, te) = (box_means(&train, radius, block, own.cue.margin)?, box_means(&test, radius, block, own.cue.margin)?);
            for (b, &(window, stride)) in BOXES.iter().enumerate() {
                let cue = SpeedCue { radius, block, window, stride, ..own.cue };
                let sp = SpeedCalibration::fit(cue, h, w, tr[b].iter().flatten().map(Vec::as_slice))?;
                let train_s: Vec<f32> = tr[b].iter().flatten().map(|m| sp.score_boxes(m)).collect::<Result<_, _>>()?;
                // The network's frame statistics are the calibration's; the speed cue's are this setting's.
                let speed_z = FrameZ::fit(&train_s, &train_s)?.speed;
                let sp = SpeedCalibration { frame_z: Some(FrameZ { prediction: pz, speed: speed_z }), ..sp };
                let s: Vec<Vec<f32>> = te[b].iter().map(|c| c.iter().map(|m| sp.score_boxes(m)).collect::<Result<_, _>>()).collect::<Result<_, _>>()?;
                let fused: Vec<Vec<f32>> = pred.iter().zip(&s).map(|(e, s)| e.iter().zip(s).map(|(&e, &s)| sp.fuse(e, s)).collect()).collect();
                let fig = |v: &[Vec<f32>]| -> anyhow::Result<[FoldFigures; 2]> {
                    let c = Candidate::new(cue.name(), stream(v));
                    Ok([figures(&c, &folds.clips[0], &labels, &Default::default(), &cal)?, figures(&c, &folds.clips[1], &labels, &Default::default(), &cal)?])
                };
                rows.insert(cue.name(), (fig(&s)?, fig(&fused)?));
            }
            eprintln!("radius {radius} block {block}: {:.0} s", t0.elapsed().as_secs_f64());
        }
    }
    println!("{:<32} {:>26} {:>26} | {:>26} {:>26}", "setting", "speed alone: A", "B", "model: A", "B");
    let ordered: Vec<(String, [FoldFigures; 2], [FoldFigures; 2])> = settings.iter().map(|c| (c.name(), rows[&c.name()].0, rows[&c.name()].1)).collect();
    for (n, s, m) in &ordered {
        println!("{n:<32} {:>26} {:>26} | {:>26} {:>26}", s[0], s[1], m[0], m[1]);
    }
    let mut out = serde_json::Map::new();
    for (family, pick) in [("speed alone", 0usize), ("model", 1)] {
        let per: Vec<[FoldFigures; 2]> = ordered.iter().map(|r| if pick == 0 { r.1 } else { r.2 }).collect();
        let mut held = Vec::new();
        for (choose, rep) in [(0usize, 1usize), (1, 0)] {
            let b = best(&per, choose);
            println!("{family}: chosen on {} {} -> on {}: {}", folds.names[choose], ordered[b].0, folds.names[rep], per[b][rep]);
            out.insert(format!("{family}: chosen on {}", folds.names[choose]), serde_json::json!({"setting": ordered[b].0, "reported_on": folds.names[rep], "figures": per[b][rep]}));
            held.push(per[b][rep]);
        }
        let cv = FoldFigures::mean(&held[0], &held[1]);
        println!("{family}: cross-validated {}", cv);
        out.insert(format!("{family}: cross-validated"), serde_json::to_value(cv)?);
    }
    out.insert("rows".into(), serde_json::to_value(ordered.iter().map(|(n, s, m)| serde_json::json!({"setting": n, "speed_alone": s, "model": m})).collect::<Vec<_>>())?);
    sfn_fsio::write_atomic(&report, &serde_json::to_vec_pretty(&out)?).map_err(|e| anyhow::anyhow!("{}: {e}", report.display()))?;
    Ok(())
}
