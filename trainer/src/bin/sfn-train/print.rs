//! `sfn-train`'s printed tables: an evaluation report and its fold report.

use sfn_trainer::eval::Report;
use sfn_trainer::folds::pct;

pub(crate) fn print_report(r: &Report) {
    println!("{:<10} {:>12} {:>12}", "clip", "offline AUC", "causal AUC");
    for (name, c) in &r.offline.per_clip {
        let ca = r.causal.per_clip.get(name).and_then(|c| c.auc);
        println!("{:<10} {:>12} {:>12}", name, pct(c.auc), pct(ca));
    }
    println!("{:<10} {:>12} {:>12}", "micro", pct(r.offline.micro_auc), pct(r.causal.micro_auc));
    println!("{:<10} {:>12} {:>12}", "macro", pct(r.offline.macro_auc), pct(r.causal.macro_auc));
    if let (Some(sat), Some(z)) = (&r.offline_saturated, r.calibration.visual_z_max) {
        println!(
            "beside (not the model's score): offline with each error saturated at z = {z:.2} (the largest on the normal footage) before the per-clip min-max: micro {} macro {}",
            pct(sat.micro_auc),
            pct(sat.macro_auc)
        );
    }
    let speed = r.calibration.speed.as_ref().map(|s| format!(" + {}", s.cue.name())).unwrap_or_default();
    println!("visual error pooled as {}{speed} (calibrated); all poolings side by side:", r.calibration.pooling.name());
    let wn = r.pooling_comparison.keys().map(String::len).max().unwrap_or(0).max(18);
    println!("{:<wn$} {:>14} {:>14} {:>14} {:>14}", "pooling", "offline micro", "offline macro", "causal micro", "causal macro");
    let row = |name: &str, f: &sfn_trainer::eval::PoolingFigures| {
        println!("{:<wn$} {:>14} {:>14} {:>14} {:>14}", name, pct(f.offline_micro_auc), pct(f.offline_macro_auc), pct(f.causal_micro_auc), pct(f.causal_macro_auc));
    };
    for (name, f) in &r.pooling_comparison {
        row(name, f);
    }
    if let Some(s) = &r.semantic {
        println!("semantic branch ({}): the scores above combine visual and semantic error; apart:", s.provider);
        row("visual only", &s.visual_only);
        row("semantic only", &s.semantic_only);
    }
    if let Some(f) = &r.folds {
        print_folds(f);
    }
    println!("{} frames scored in {:.1} s", r.frames_scored, r.seconds);
}

pub(crate) fn print_folds(f: &sfn_trainer::folds::FoldReport) {
    let [a, b] = &f.folds.names;
    println!("folds: {a} = {}, {b} = {}", f.folds.clips[0].join(","), f.folds.clips[1].join(","));
    let wn = f.rows.iter().map(|r| r.candidate.len()).max().unwrap_or(0).max(12);
    println!("{:<wn$} {:>22} {:>22} {:>22}", "candidate (offline / causal micro, macro)", format!("fold {a}"), format!("fold {b}"), "mean");
    for r in &f.rows {
        println!("{:<wn$} {:>22} {:>22} {:>22}", r.candidate, r.per_fold[a], r.per_fold[b], r.mean);
    }
    println!("rule: {}", f.rule);
    for s in &f.selections {
        println!("chosen on {} (tolerance {:.2} points): {} -> on {}: {}", s.chosen_on, 100.0 * s.tolerance, s.candidate, s.reported_on, s.figures);
    }
    println!("cross-validated (mean of the held-out folds): {}; the model's own scoring: {}", f.cross_validated, f.model);
    if let Some(h) = &f.heldout_normal {
        println!(
            "held-out normal clips {}: {} frames; frame MSE model {:.6} / copy {:.6} = {:.3}x; moving pixels (|dI| > {}, {:.1}%) {:.6} / {:.6} = {:.3}x; causal max {:.2}, {} alarm(s) at {} ({} up, {} down)",
            h.clips.join(","),
            h.frames,
            h.model_mse,
            h.copy_mse,
            h.mse_ratio,
            h.moving_threshold,
            100.0 * h.moving_share,
            h.model_moving_mse,
            h.copy_moving_mse,
            h.moving_ratio,
            h.causal_max,
            h.alarms,
            h.alarm_threshold,
            h.raise_after,
            h.clear_after
        );
    }
}
