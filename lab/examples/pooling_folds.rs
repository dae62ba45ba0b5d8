//! Which pooling of the network's error joins the speed cue best, chosen on the folds: the network's
//! error pooled as the plain 32x32 box max and as the frame mean, each z-scored per frame against the
//! model's training clips (train.json's clips less its holdout), alone and in the max with the speed
//! cue of the model's calibration; the fold protocol of `sfn-train eval --folds` decides.
//! `cargo run --release -p sfn-lab --example pooling_folds -- MODEL_DIR DATA`
use std::collections::BTreeMap;
use std::path::PathBuf;

use sfn_models::scoring::{CausalCalibration, ErrorPooling, OfflineScoring};
use sfn_trainer::folds::{cross_validate, pct, Candidate};
use sfn_trainer::train::{dataset_errors, speed_scores};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        anyhow::bail!("usage: pooling_folds MODEL_DIR DATA");
    }
    let (dir, data) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let sfn_lab::FoldSetup { loaded, tcfg: _, cal, folds, labels, test, train } = sfn_lab::FoldSetup::open(&dir, &data)?;
    let sp = cal.speed.clone().ok_or_else(|| anyhow::anyhow!("the calibration has no speed cue"))?;
    let poolings = [ErrorPooling::WindowMax { window: 32, stride: 16 }, ErrorPooling::FrameMean];
    // The streams take minutes to compute; `POOLING_CACHE=FILE` keeps them between runs.
    let cache = std::env::var_os("POOLING_CACHE").map(PathBuf::from);
    type Streams = (Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>, Vec<Vec<f32>>);
    let (tr, te, speed): Streams = match cache.as_ref().filter(|c| c.exists()) {
        Some(c) => serde_json::from_slice(&std::fs::read(c)?)?,
        None => {
            let tr = dataset_errors(&loaded.model, &train, 32, &poolings, None, None)?.visual;
            let te = dataset_errors(&loaded.model, &test, 32, &poolings, None, None)?.visual;
            let s = (tr, te, speed_scores(&test, &sp)?);
            if let Some(c) = &cache {
                std::fs::write(c, serde_json::to_vec(&s)?)?;
            }
            s
        }
    };
    let names: Vec<String> = test.clips.iter().map(|c| c.name.clone()).collect();
    let mut cands = vec![Candidate::new("speed cue alone", names.iter().cloned().zip(speed.iter().cloned()).collect())];
    for (p, pooling) in poolings.iter().enumerate() {
        let all: Vec<f32> = tr[p].iter().flatten().copied().collect();
        let z = CausalCalibration::fit(&all, None, cal.sigma, 1.0, 0.0)?;
        let zs: Vec<Vec<f32>> = te[p].iter().map(|c| c.iter().map(|&e| (e - z.visual_mean) / z.visual_std).collect()).collect();
        let stream = |v: &[Vec<f32>]| -> BTreeMap<String, Vec<f32>> { names.iter().cloned().zip(v.iter().cloned()).collect() };
        cands.push(Candidate::new(format!("network: {} (frame z)", pooling.name()), stream(&zs)));
        for w in [0.5f32, 1.0, 2.0] {
            let fused: Vec<Vec<f32>> = zs.iter().zip(&speed).map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| x.max(w * y)).collect()).collect();
            cands.push(Candidate::new(format!("max(network {} z, {w} x speed)", pooling.name()), stream(&fused)));
            let fused: Vec<Vec<f32>> = zs.iter().zip(&speed).map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| x + w * y).collect()).collect();
            cands.push(Candidate::new(format!("network {} z + {w} x speed", pooling.name()), stream(&fused)));
        }
    }
    let r = cross_validate(&folds, &cands, &labels, &OfflineScoring::default(), &cal)?;
    for row in &r.rows {
        let cell = |f: &str| format!("{}/{}", pct(row.per_fold[f].offline_micro_auc), pct(row.per_fold[f].causal_micro_auc));
        println!("{:<48} A {:>13}  B {:>13}  mean {}/{}", row.candidate, cell("A"), cell("B"), pct(row.mean.offline_micro_auc), pct(row.mean.causal_micro_auc));
    }
    for s in &r.selections {
        println!("chosen on {}: {} -> on {}: {}/{}", s.chosen_on, s.candidate, s.reported_on, pct(s.figures.offline_micro_auc), pct(s.figures.causal_micro_auc));
    }
    println!("cross-validated: {}/{}", pct(r.cross_validated.offline_micro_auc), pct(r.cross_validated.causal_micro_auc));
    Ok(())
}
