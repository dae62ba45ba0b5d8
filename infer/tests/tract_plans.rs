//! tract's plans of one graph: the batch-1 plan (every shape concrete), a batch's own concrete plan
//! and the symbolic-batch plan give the same outputs up to float rounding, and a batch's rows are the
//! batch-1 outputs of each frame.

use std::path::Path;

use sfn_infer::tract::TractRunner;
use sfn_infer::{Array, Runner};

type Inputs = Vec<(String, Vec<usize>, Vec<f32>)>;

fn export(graph: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/ped2-cpu/onnx").join(graph)
}

fn refs(d: &Inputs) -> Vec<(&str, &[usize], &[f32])> {
    d.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())).collect()
}

/// Largest |a - b| over the largest |a|.
fn rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
}

#[test]
fn the_batch_one_plan_and_the_symbolic_plan_agree() {
    for graph in ["encoder.onnx", "decoder.onnx"] {
        let mut r = TractRunner::open(&export(graph)).unwrap();
        let one = r.sample_inputs(1);
        let a = r.run(&refs(&one)).unwrap();
        let b = r.run_any_batch(&refs(&one)).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.shape, y.shape, "{graph}");
            assert!(rel(&x.data, &y.data) < 1e-5, "{graph}: {}", rel(&x.data, &y.data));
        }
        // Batch 2 (its own concrete plan): the frame and its reversal; each row as at batch 1.
        let reversed: Inputs = one.iter().map(|(n, s, v)| (n.clone(), s.clone(), v.iter().rev().copied().collect())).collect();
        let c = r.run(&refs(&reversed)).unwrap();
        let two: Inputs =
            one.iter().zip(&reversed).map(|((n, s, v), (_, _, w))| (n.clone(), std::iter::once(2).chain(s[1..].iter().copied()).collect(), v.iter().chain(w).copied().collect())).collect();
        let d: Vec<Array> = r.run(&refs(&two)).unwrap();
        // The same batch on the symbolic plan (batches past MAX_CONCRETE_BATCH run there).
        let e: Vec<Array> = r.run_any_batch(&refs(&two)).unwrap();
        for y in [&d, &e] {
            for ((x, z), y) in a.iter().zip(&c).zip(y) {
                assert_eq!(y.shape[0], 2, "{graph}");
                let half = y.data.len() / 2;
                assert!(rel(&x.data, &y.data[..half]) < 1e-5 && rel(&z.data, &y.data[half..]) < 1e-5, "{graph}");
            }
        }
    }
}
