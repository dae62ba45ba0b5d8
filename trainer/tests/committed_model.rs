//! The model committed at `assets/ped2-cpu` loads with the current code and, where Ped2 is present
//! (`SFN_DATA`, or `../shared/data/ped2` beside the repo as in CI), still scores what its `eval.json` says.

use std::path::{Path, PathBuf};

use sfn_models::scoring::OfflineScoring;
use sfn_trainer::checkpoint;
use sfn_trainer::eval::{evaluate, EvalOptions, Report};
use sfn_trainer::folds::Folds;

/// The committed model's error pooling and speed cue, as `eval` names them in its rows.
const POOLING: &str = "relative_window_max_40s20_c100_f4801_t2";
const SPEED: &str = "speed_r4_b15_40s20_p1_g0.1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn committed_model_loads() {
    let dir = repo().join("assets/ped2-cpu");
    let m = checkpoint::load_model(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.cfg.preset, "cpu-ped2");
    // One network of the recipe (seed 17) at 160x240.
    assert!(m.ensemble.is_none());
    assert_eq!((m.cfg.image.height, m.cfg.image.width, m.cfg.patch), (160, 240, 16));
    // It is what the preset trains now, with the preset's training and scoring settings.
    assert_eq!(m.cfg, sfn_models::SfnConfig::cpu_ped2());
    let tcfg: sfn_trainer::train::TrainConfig = checkpoint::read_json(&dir.join("train.json")).unwrap();
    let preset = sfn_trainer::train::TrainConfig::for_preset("cpu-ped2");
    assert_eq!(preset.holdout, ["15", "16"]);
    assert_eq!(tcfg, preset);
    let cal: sfn_models::scoring::CausalCalibration = checkpoint::read_json(&dir.join("calibration.json")).unwrap();
    assert_eq!(cal.speed.map(|s| s.cue), tcfg.speed);
}

#[test]
fn committed_model_reproduces_its_figures_on_ped2() {
    let data = std::env::var_os("SFN_DATA").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared/data/ped2"));
    if !data.join("testing").is_dir() {
        eprintln!("skipped: no Ped2 at {} (set SFN_DATA)", data.display());
        return;
    }
    let dir = repo().join("assets/ped2-cpu");
    let stored: Report = checkpoint::read_json(&dir.join("eval.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = EvalOptions {
        model: dir,
        data,
        report: tmp.path().join("eval.json"),
        plots: Some(tmp.path().join("plots")),
        offline: OfflineScoring::default(),
        causal_sigma: None,
        batch_size: 32,
        captions: None,
        clips: None,
        folds: Some(Folds::ped2()),
        alarm: (3.5, 3, 10),
    };
    let r = evaluate(&opts).unwrap_or_else(|e| panic!("{e}"));
    let close = |a: Option<f64>, b: Option<f64>, what: &str| {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!((a - b).abs() < 1e-3, "{what}: now {a}, committed {b}");
    };
    close(r.offline.micro_auc, stored.offline.micro_auc, "offline micro");
    close(r.offline.macro_auc, stored.offline.macro_auc, "offline macro");
    close(r.causal.micro_auc, stored.causal.micro_auc, "causal micro");
    close(r.causal.macro_auc, stored.causal.macro_auc, "causal macro");
    assert_eq!(r.frames_scored, 1288);
    assert_eq!(r.calibration.pooling.name(), POOLING);
    assert_eq!(r.calibration.speed.as_ref().map(|s| s.cue), Some(sfn_models::scoring::SpeedCue::PED2_160X240_P));
    // The fold figures (the ones that count) are what eval.json says.
    let (f, sf) = (r.folds.as_ref().unwrap(), stored.folds.as_ref().expect("eval.json holds the fold report (eval --folds)"));
    assert_eq!(f.folds, Folds::ped2());
    for (what, a, b) in [("cross-validated", &f.cross_validated, &sf.cross_validated), ("model", &f.model, &sf.model)] {
        close(a.offline_micro_auc, b.offline_micro_auc, &format!("{what} offline micro"));
        close(a.causal_micro_auc, b.causal_micro_auc, &format!("{what} causal micro"));
    }
    assert_eq!(f.selections.iter().map(|s| &s.candidate).collect::<Vec<_>>(), sf.selections.iter().map(|s| &s.candidate).collect::<Vec<_>>());
    // The appearance cue stored beside the model (not part of its scoring) is reported as eval.json says.
    let row = |f: &sfn_trainer::folds::FoldReport, name: &str| f.rows.iter().find(|row| row.candidate == name).unwrap_or_else(|| panic!("no fold row {name}")).mean;
    for name in ["appearance alone".to_string(), format!("model + appearance: {POOLING} + {SPEED} + appearance")] {
        let (a, b) = (row(f, &name), row(sf, &name));
        close(a.offline_micro_auc, b.offline_micro_auc, &format!("{name} offline micro"));
        close(a.causal_micro_auc, b.causal_micro_auc, &format!("{name} causal micro"));
    }
    floors(&r);
}

/// What the committed model (one 160x240 network with a pixel stem; the mean of the positive parts of
/// the frame z-scores of its 40x40 box-max error, weighted by how much the frame changed, divided by
/// copying's and held over two frames, and of the speed cue, causal sigma 4/3) must keep reaching; a
/// regression below any fails. On the folds (the figures that count): its own scoring 98.43 offline /
/// 99.12 causal micro (mean of A and B), cross-validated 97.76 / 99.11 (fold A chooses the network's
/// error alone); on all 8 dev clips 97.48 / 98.78. Its prediction beats copying the last frame on the
/// held-out normal clips, its error alone detects better than copying's (and better than its
/// unweighted error), and its scoring beats the speed cue alone on each fold, offline and causal.
fn floors(r: &Report) {
    let f = r.folds.as_ref().unwrap();
    assert!(f.model.offline_micro_auc.unwrap() >= 0.98 && f.model.causal_micro_auc.unwrap() >= 0.99, "{:?}", f.model);
    assert!(f.cross_validated.offline_micro_auc.unwrap() >= 0.975 && f.cross_validated.causal_micro_auc.unwrap() >= 0.99, "{:?}", f.cross_validated);
    // The learned part carries weight on each fold: the model's scoring above the speed cue alone
    // (measured at the model's 160x240 with its scaled cue), offline and causal on both folds.
    let fold_row = |name: &str| &f.rows.iter().find(|row| row.candidate == name).unwrap_or_else(|| panic!("no fold row {name}")).per_fold;
    let (model, speed) = (fold_row(&format!("model: {POOLING} + {SPEED}")), fold_row("speed cue alone"));
    for fold in ["A", "B"] {
        let (m, s) = (&model[fold], &speed[fold]);
        assert!(m.causal_micro_auc.unwrap() > s.causal_micro_auc.unwrap(), "fold {fold}: {m:?} vs speed alone {s:?}");
        assert!(m.offline_micro_auc.unwrap() > s.offline_micro_auc.unwrap(), "fold {fold}: {m:?} vs speed alone {s:?}");
    }
    assert!(r.offline.micro_auc.unwrap() >= 0.97, "offline micro {:?}", r.offline.micro_auc);
    assert!(r.causal.micro_auc.unwrap() >= 0.985, "causal micro {:?}", r.causal.micro_auc);
    // The learned part carries weight: the network's error alone beats copying's pooled the same way
    // (by 6.4 offline and 6.9 causal points on the 8 clips), and the fused scoring beats copying fused
    // the same way with the same speed cue, on the mean of the folds. Weighted by how much the frame
    // changed and taken relative to copying's, the network's error detects better than unweighted
    // (plain box max: 97.50 / 96.77 against 98.29 / 98.72).
    let alone = &r.pooling_comparison[&format!("{POOLING} alone")];
    let copy = &r.pooling_comparison[&format!("copy: {POOLING}")];
    let unmasked = &r.pooling_comparison["window_max_40s20"];
    assert!(alone.offline_micro_auc.unwrap() > unmasked.offline_micro_auc.unwrap() && alone.causal_micro_auc.unwrap() > unmasked.causal_micro_auc.unwrap(), "{alone:?} vs {unmasked:?}");
    assert!(alone.offline_micro_auc.unwrap() > copy.offline_micro_auc.unwrap() + 0.02, "{alone:?} vs {copy:?}");
    assert!(alone.causal_micro_auc.unwrap() > copy.causal_micro_auc.unwrap() + 0.03, "{alone:?} vs {copy:?}");
    let row = |name: &str| f.rows.iter().find(|row| row.candidate == name).unwrap_or_else(|| panic!("no fold row {name}")).mean;
    let (model, copy_fused) = (row(&format!("model: {POOLING} + {SPEED}")), row(&format!("copy: {POOLING} + {SPEED}")));
    assert!(model.offline_micro_auc.unwrap() > copy_fused.offline_micro_auc.unwrap() + 0.01, "{model:?} vs {copy_fused:?}");
    assert!(model.causal_micro_auc.unwrap() > copy_fused.causal_micro_auc.unwrap(), "{model:?} vs {copy_fused:?}");
    // On the normal clips held out of training: below copying's error, whole frame and moving pixels
    // (0.31x and 0.18x), and no alarm at the example config's threshold.
    let h = f.heldout_normal.as_ref().expect("eval --folds scores the held-out normal clips");
    assert!(h.mse_ratio < 0.5 && h.moving_ratio < 0.3, "{h:?}");
    assert_eq!(h.alarms, 0, "{h:?}");
}
