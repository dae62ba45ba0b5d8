//! The network's error and the speed cue fused in each box, then the largest box, against the committed
//! fusion of the two frame maxima, under eval's fold rule: the network's box values are the committed
//! pooling's (its error relative to copying's), z-scored per box on the model's training clips; the
//! speed cue's box z is the calibration's; fused box (pos(z_net) + lambda pos(z_speed)) / (1 + lambda),
//! the largest box held over the pooling's frames.
//! `cargo run --release -p sfn-lab --example box_fusion_folds -- MODEL_DIR DATA REPORT.json`
use std::collections::BTreeMap;
use std::path::PathBuf;

use sfn_models::scoring::{self, box_grid, RegionStats};
use sfn_trainer::data::Dataset;
use sfn_trainer::ensemble::Network;
use sfn_trainer::folds::{cross_validate, Candidate};
use sfn_trainer::predict::{error_summaries, speed_box_means};

/// Box values of the model's pooling (`[clip][frame][box]`) on every scored frame of `ds`.
fn box_values(model: &dyn Network, ds: &Dataset, pooling: scoring::ErrorPooling) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
    let summaries = error_summaries(model, ds, 16, None, pooling)?.summaries;
    Ok(summaries.iter().map(|c| c.iter().map(|s| pooling.box_values_of_means(s)).collect::<Result<_, _>>()).collect::<Result<_, _>>()?)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        anyhow::bail!("usage: box_fusion_folds MODEL_DIR DATA REPORT.json");
    }
    let (dir, data, report) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]), PathBuf::from(&args[3]));
    let sfn_lab::FoldSetup { loaded, tcfg: _, cal, folds, labels, test, train } = sfn_lab::FoldSetup::open(&dir, &data)?;
    let sp = cal.speed.clone().ok_or_else(|| anyhow::anyhow!("{}/calibration.json: no speed cue", dir.display()))?;
    let (window, stride) = cal.pooling.window().ok_or_else(|| anyhow::anyhow!("{}/calibration.json: pooling {} has no boxes", dir.display(), cal.pooling.name()))?;
    if (window, stride) != (sp.cue.window, sp.cue.stride) {
        anyhow::bail!("{}/calibration.json: the network's boxes {window}/{stride} are not the speed cue's {}/{}", dir.display(), sp.cue.window, sp.cue.stride);
    }
    let (h, w) = (test.format.height, test.format.width);
    let hold = cal.pooling.frames();
    let (tr, te) = (box_values(loaded.network(), &train, cal.pooling)?, box_values(loaded.network(), &test, cal.pooling)?);
    let regions = RegionStats::fit(window, stride, box_grid(h, w, window, stride), tr.iter().flatten().map(Vec::as_slice))?;
    let speed = speed_box_means(&test, &sp.cue)?;
    let lambda = sp.cue.weight;
    let pos = |v: f32| if v < 0.0 { 0.0 } else { v };
    let (mut own, mut boxed, mut net, mut spd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (nc, sc) in te.iter().zip(&speed) {
        let pooled: Vec<f32> = nc.iter().map(|v| cal.pooling.pool_boxes(v, h, w, None)).collect::<Result<_, _>>()?;
        let pred = scoring::persist(&pooled, hold);
        let s: Vec<f32> = sc.iter().map(|m| sp.score_boxes(m)).collect::<Result<_, _>>()?;
        own.push(pred.iter().zip(&s).map(|(&e, &s)| sp.fuse(e, s)).collect::<Vec<f32>>());
        let mut fused = Vec::with_capacity(nc.len());
        for (v, m) in nc.iter().zip(sc) {
            let (zn, zs) = (regions.box_scores(v)?, sp.regions.box_scores(m)?);
            fused.push(zn.iter().zip(&zs).map(|(&a, &b)| (pos(a) + lambda * pos(b)) / (1.0 + lambda)).fold(f32::NEG_INFINITY, f32::max));
        }
        boxed.push(scoring::persist(&fused, hold));
        net.push(pred);
        spd.push(s);
    }
    let names: Vec<String> = test.clips.iter().map(|c| c.name.clone()).collect();
    let stream = |v: &[Vec<f32>]| -> BTreeMap<String, Vec<f32>> { names.iter().cloned().zip(v.iter().cloned()).collect() };
    let offline = Default::default();
    let chosen = cross_validate(
        &folds,
        &[Candidate::new(format!("model: {} + {}", cal.pooling.name(), sp.cue.name()), stream(&own)), Candidate::new("per-box fusion", stream(&boxed))],
        &labels,
        &offline,
        &cal,
    )?;
    let beside = cross_validate(&folds, &[Candidate::new("network alone", stream(&net)), Candidate::new("speed cue alone", stream(&spd))], &labels, &offline, &cal)?;
    for r in chosen.rows.iter().chain(&beside.rows) {
        println!("{:<70} A {:>26}  B {:>26}  mean {:>26}", r.candidate, r.per_fold[&folds.names[0]], r.per_fold[&folds.names[1]], r.mean);
    }
    for s in &chosen.selections {
        println!("chosen on {} (tolerance {:.2} points): {} -> on {}: {}", s.chosen_on, 100.0 * s.tolerance, s.candidate, s.reported_on, s.figures);
    }
    println!("cross-validated: {}", chosen.cross_validated);
    sfn_fsio::write_atomic(&report, &serde_json::to_vec_pretty(&serde_json::json!({"rule": chosen, "beside": beside.rows}))?).map_err(|e| anyhow::anyhow!("{}: {e}", report.display()))?;
    Ok(())
}
