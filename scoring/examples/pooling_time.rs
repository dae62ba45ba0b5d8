//! Times the network cue's poolings at 128x192 on a noisy synthetic frame triple, side by side in
//! interleaved rounds: the change-weighted box max, the same divided by copying's box error, and that
//! held over two frames (a clip's frames one after another, as the camera runs them). The speed cue is
//! left out (`speed_time` times it); the whole camera is `cargo bench -p sfn-edge --bench replay`.
//! `cargo run --release -p sfn-scoring --example pooling_time`
use sfn_scoring::{ErrorPooling, PooledHistory, VisualScoring};

#[path = "common/frames.rs"]
mod frames;

fn main() {
    let (h, w) = (128, 192);
    let (last, target, mut noise) = frames::moving_pair(h, w);
    let pred: Vec<f32> = target.iter().map(|t| t + 0.1 * noise()).collect();
    let poolings = [
        ErrorPooling::ChangedWindowMax { window: 32, stride: 16, change_milli: 100 },
        ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 3829, frames: 1 },
        ErrorPooling::RelativeWindowMax { window: 32, stride: 16, change_milli: 100, floor_micro: 3829, frames: 2 },
    ];
    let (n, rounds) = (50, 10);
    let mut ms = vec![Vec::new(); poolings.len()];
    let mut acc = 0f32;
    for _ in 0..rounds {
        for (k, &pooling) in poolings.iter().enumerate() {
            let scoring = VisualScoring { pooling, regions: None, speed: None };
            let mut history = PooledHistory::new(pooling.frames());
            let t = std::time::Instant::now();
            for _ in 0..n {
                acc += scoring.explain_in(&pred, &target, &last, 1, h, w, &mut history).unwrap().error;
            }
            ms[k].push(t.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
    }
    println!("| pooling | ms a frame, fastest round | mean | vs the change-weighted box max (fastest) |");
    println!("|---|---:|---:|---:|");
    let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let base = fastest(&ms[0]);
    for (p, v) in poolings.iter().zip(&ms) {
        println!("| {} | {:.3} | {:.3} | {:.2}x |", p.name(), fastest(v), v.iter().sum::<f64>() / v.len() as f64, fastest(v) / base);
    }
    println!("(checksum {acc})");
}
