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
use sfn_infer::Runner;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/ped2-cpu/onnx"));
    let rounds: usize = args.get(2).map(|r| r.parse()).transpose()?.unwrap_or(40);
    println!("| graph | outputs bit-identical | largest difference / largest output | batch-1 plan ms | symbolic plan ms | ratio |");
    println!("|---|---|---:|---:|---:|---:|");
    for graph in ["encoder.onnx", "decoder.onnx"] {
        let mut r = TractRunner::open(&dir.join(graph))?;
        // Deterministic inputs in [0, 1); the text mask 0 (no caption), as a camera without captions runs.
        let data: Vec<(String, Vec<usize>, Vec<f32>)> = r
            .input_shapes()
            .into_iter()
            .map(|(n, s)| {
                let len = s.iter().product();
                let v = if n == "text_mask" { vec![0.0; len] } else { (0..len).map(|i| ((i as u64 * 2_654_435_761) % 1000) as f32 / 1000.0).collect() };
                (n, s, v)
            })
            .collect();
        let inputs: Vec<(&str, &[usize], &[f32])> = data.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())).collect();
        let a = r.run(&inputs)?;
        let b = r.run_any_batch(&inputs)?;
        let same = a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.shape == y.shape && x.data.iter().zip(&y.data).all(|(p, q)| p.to_bits() == q.to_bits()));
        // Largest difference relative to the output's largest magnitude.
        let rel = a
            .iter()
            .zip(&b)
            .map(|(x, y)| {
                let scale = x.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
                x.data.iter().zip(&y.data).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
            })
            .fold(0f32, f32::max);
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
        let data: Vec<(String, Vec<usize>, Vec<f32>)> = r
            .input_shapes()
            .into_iter()
            .map(|(n, s)| {
                let len: usize = s.iter().product();
                let v = if n == "text_mask" { vec![0.0; len] } else { (0..len).map(|i| ((i as u64 * 2_654_435_761) % 1000) as f32 / 1000.0).collect() };
                (n, s, v)
            })
            .collect();
        let one: Vec<(&str, &[usize], &[f32])> = data.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())).collect();
        // The batch of 8: the same frame 8 times.
        let data8: Vec<(String, Vec<usize>, Vec<f32>)> = data.iter().map(|(n, s, v)| (n.clone(), std::iter::once(8).chain(s[1..].iter().copied()).collect(), v.repeat(8))).collect();
        let batch: Vec<(&str, &[usize], &[f32])> = data8.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())).collect();
        let a = r.run(&one)?;
        let b = r.run_on(&eight, &batch)?;
        let same = a.iter().zip(&b).all(|(x, y)| (0..8).all(|k| y.data[k * x.data.len()..(k + 1) * x.data.len()].iter().zip(&x.data).all(|(p, q)| p.to_bits() == q.to_bits())));
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
