//! tract's batch-1 plan (every shape concrete) against its symbolic-batch plan on the same export and
//! the same inputs: whether their outputs are bit for bit the same, and ms a call of each, timed
//! alternately in one process (the machine is shared and noisy: compare the ratio); then what
//! batching buys: ms a frame of a concrete batch-8 plan against 8 batch-1 calls.
//!
//! ```text
//! cargo run --release -p sfn-infer --example tract_plans -- [EXPORT_DIR] [ROUNDS]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use sfn_infer::tract::TractRunner;
use sfn_infer::{Array, Runner};

type Inputs = Vec<(String, Vec<usize>, Vec<f32>)>;

fn refs(d: &Inputs) -> Vec<(&str, &[usize], &[f32])> {
    d.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())).collect()
}

fn bits_equal(x: &[f32], y: &[f32]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
}

/// Largest difference relative to the output's largest magnitude, over all outputs.
fn relative_difference(a: &[Array], b: &[Array]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let scale = x.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
            x.data.iter().zip(&y.data).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
        })
        .fold(0f32, f32::max)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/ped2-cpu/onnx"));
    let rounds: usize = args.get(2).map(|r| r.parse()).transpose()?.unwrap_or(40);
    println!("| graph | outputs bit-identical | largest difference / largest output | batch-1 plan ms | symbolic plan ms | ratio |");
    println!("|---|---|---:|---:|---:|---:|");
    for graph in ["encoder.onnx", "decoder.onnx"] {
        let mut r = TractRunner::open(&dir.join(graph))?;
        let data = r.sample_inputs(1);
        let inputs = refs(&data);
        let a = r.run(&inputs)?;
        let b = r.run_any_batch(&inputs)?;
        let same = a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.shape == y.shape && bits_equal(&x.data, &y.data));
        let rel = relative_difference(&a, &b);
        let (mut t1, mut t2) = (0.0, 0.0);
        for _ in 0..rounds {
            let t = Instant::now();
            r.run(&inputs)?;
            t1 += t.elapsed().as_secs_f64();
            let t = Instant::now();
            r.run_any_batch(&inputs)?;
            t2 += t.elapsed().as_secs_f64();
        }
        let (m1, m2) = (1e3 * t1 / rounds as f64, 1e3 * t2 / rounds as f64);
        println!("| {graph} | {same} | {rel:.1e} | {m1:.2} | {m2:.2} | {:.2}x |", m1 / m2);
    }
    println!("\n| graph | batch-1 plan, ms a frame | concrete batch-8 plan, ms a frame | ratio | batch rows bit-identical to batch 1 |");
    println!("|---|---:|---:|---:|---|");
    for graph in ["encoder.onnx", "decoder.onnx"] {
        let mut r = TractRunner::open(&dir.join(graph))?;
        let eight = r.concrete_plan(8)?;
        let data = r.sample_inputs(1);
        let one = refs(&data);
        // The batch of 8: the same frame 8 times.
        let data8: Inputs = data.iter().map(|(n, s, v)| (n.clone(), std::iter::once(8).chain(s[1..].iter().copied()).collect(), v.repeat(8))).collect();
        let batch = refs(&data8);
        let a = r.run(&one)?;
        let b = r.run_on(&eight, &batch)?;
        let same = a.iter().zip(&b).all(|(x, y)| y.data.chunks(x.data.len()).all(|row| bits_equal(row, &x.data)));
        let (mut t1, mut t8) = (0.0, 0.0);
        for _ in 0..rounds / 4 {
            let t = Instant::now();
            for _ in 0..8 {
                r.run(&one)?;
            }
            t1 += t.elapsed().as_secs_f64();
            let t = Instant::now();
            r.run_on(&eight, &batch)?;
            t8 += t.elapsed().as_secs_f64();
        }
        let n = (8 * (rounds / 4)) as f64;
        println!("| {graph} | {:.2} | {:.2} | {:.2}x | {same} |", 1e3 * t1 / n, 1e3 * t8 / n, t8 / t1);
    }
    Ok(())
}
