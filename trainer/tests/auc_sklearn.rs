//! `sfn_models::scoring::roc_auc` against scikit-learn's `roc_auc_score`.
//!
//! Needs the Python venv made by `scripts/setup.sh` (numpy + scikit-learn); the interpreter is
//! `$SFN_PYTHON`, default `<workspace>/.venv/bin/python`. Without it the test fails (it never skips).

use std::path::PathBuf;
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sfn_models::scoring::roc_auc;

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from sklearn.metrics import roc_auc_score
with open(sys.argv[1]) as f:
    cases = json.load(f)
out = [float(roc_auc_score(np.asarray(c["labels"], dtype=np.int64),
                           np.asarray(c["scores"], dtype=np.float64))) for c in cases]
with open(sys.argv[2], "w") as f:
    json.dump(out, f)
"#;

struct Case {
    name: &'static str,
    scores: Vec<f32>,
    labels: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_240_611);
    let mut out = vec![
        Case { name: "hand-worked", scores: vec![0.1, 0.4, 0.35, 0.8], labels: vec![0, 0, 1, 1] },
        Case { name: "all tied", scores: vec![0.3; 6], labels: vec![0, 1, 0, 1, 1, 0] },
        Case { name: "signed zeros and infinities", scores: vec![-0.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, 0.0, 1.0], labels: vec![0, 1, 1, 0, 0, 1] },
    ];
    // Coarse grid: many ties across classes.
    let n = 200;
    let labels: Vec<u8> = (0..n).map(|_| u8::from(rng.random_bool(0.4))).collect();
    let scores = labels.iter().map(|&l| (rng.random_range(0..8) + i32::from(l) * 2) as f32 / 10.0).collect();
    out.push(Case { name: "coarse grid 200", scores, labels });
    // Large, continuous, overlapping classes.
    let n = 5000;
    let labels: Vec<u8> = (0..n).map(|_| u8::from(rng.random_bool(0.3))).collect();
    let scores: Vec<f32> = labels.iter().map(|&l| rng.random::<f32>() + 0.4 * f32::from(l) + 1e-3 * rng.random::<f32>()).collect();
    // Large and quantised to 0.01: heavy ties.
    let quantised = scores.iter().map(|s| (s * 100.0).round() / 100.0).collect();
    out.push(Case { name: "continuous 5000", scores, labels: labels.clone() });
    out.push(Case { name: "quantised 5000", scores: quantised, labels });
    // Very imbalanced.
    let n = 1000;
    let mut labels = vec![0u8; n];
    for i in [17, 500, 999] {
        labels[i] = 1;
    }
    let scores = (0..n).map(|i| rng.random::<f32>() + if labels[i] == 1 { 0.5 } else { 0.0 }).collect();
    out.push(Case { name: "3 positives in 1000", scores, labels });
    // Neighbouring f32 values (must not be merged into ties).
    let scores: Vec<f32> = (0..64).map(|k| 1.0 + k as f32 * f32::EPSILON).collect();
    let labels = (0..64).map(|k| u8::from((k * 7) % 5 < 2)).collect();
    out.push(Case { name: "adjacent f32", scores, labels });
    out
}

fn python() -> PathBuf {
    match std::env::var_os("SFN_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    }
}

#[test]
fn roc_auc_matches_scikit_learn() {
    let py = python();
    assert!(py.exists(), "Python for the scikit-learn reference not found at {} (set SFN_PYTHON or run scripts/setup.sh)", py.display());
    let cases = cases();
    let ours: Vec<f64> = cases.iter().map(|c| roc_auc(&c.scores, &c.labels).unwrap_or_else(|| panic!("{}: AUC undefined", c.name))).collect();

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("cases.json");
    let output = tmp.path().join("auc.json");
    let script = tmp.path().join("auc.py");
    // f32 -> f64 is exact, so Python sees the very same numbers.
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            let scores: Vec<f64> = c.scores.iter().map(|&s| f64::from(s)).collect();
            // JSON has no infinities: write them as +-1e308, which keeps the order.
            let scores: Vec<f64> = scores.iter().map(|&s| s.clamp(-1e308, 1e308)).collect();
            serde_json::json!({ "scores": scores, "labels": c.labels })
        })
        .collect();
    std::fs::write(&input, serde_json::to_vec(&json).unwrap()).unwrap();
    std::fs::write(&script, SCRIPT).unwrap();

    let run = Command::new(&py).arg(&script).arg(&input).arg(&output).output();
    let run = run.unwrap_or_else(|e| panic!("cannot run {}: {e} (run scripts/setup.sh)", py.display()));
    assert!(run.status.success(), "scikit-learn reference failed (run scripts/setup.sh): {}", String::from_utf8_lossy(&run.stderr));
    let theirs: Vec<f64> = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(theirs.len(), cases.len());
    for ((c, a), b) in cases.iter().zip(&ours).zip(&theirs) {
        assert!((a - b).abs() < 1e-9, "{}: ours {a} vs scikit-learn {b}", c.name);
    }
    // The cases are not trivial: they span a range of AUCs.
    assert!(ours.iter().any(|&a| a > 0.6 && a < 0.95));
    assert!(ours.iter().any(|&a| (a - 0.5).abs() < 1e-12));
}
