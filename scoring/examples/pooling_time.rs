//! Times the network cue's poolings at 128x192 on a noisy synthetic frame triple, side by side in
//! interleaved rounds: the change-weighted box max, the same divided by copying's box error, and that
//! held over two frames (a clip's frames one after another, as the camera runs them). The speed cue is
//! left out (`speed_time` times it); the whole camera is `cargo bench -p sfn-edge --bench replay`.
//! `cargo run --release -p sfn-scoring --example pooling_time`
use sfn_scoring::{ErrorPooling, PooledHistory, VisualScoring};

fn main() {
    let (h, w) = (128, 192);
    let mut state = 12345u64;
    let mut noise = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let last: Vec<f32> = (0..h * w).map(|i| ((i % w) as f32 * 0.37 + (i / w) as f32 * 0.91).sin() * 0.3 + 0.2 * noise()).collect();
    let target: Vec<f32> = (0..h * w).map(|i| last[i - usize::from(i % w > 0)] + 0.2 * noise()).collect();
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
