//! Times every speed-map kernel this CPU runs at 128x192 on a noisy synthetic pair, side by side (the
//! benchmark on Ped2 frames is `cargo bench -p sfn-edge --bench replay`, with and without the cue).
#[path = "common/frames.rs"]
mod frames;

fn main() {
    let (h, w) = (128, 192);
    let (a, b, _) = frames::moving_pair(h, w);
    // Every kernel this CPU runs, interleaved in rounds so that they share the machine's state.
    let kernels = sfn_scoring::SpeedKernel::available();
    let (n, rounds) = (20, 5);
    let mut ms = vec![0f64; kernels.len()];
    let mut acc = 0f32;
    for _ in 0..rounds {
        for (k, &kernel) in kernels.iter().enumerate() {
            let t = std::time::Instant::now();
            for _ in 0..n {
                acc += sfn_scoring::speed_map_with(kernel, &a, &b, 1, h, w, 3, 12, 0.1).unwrap().iter().sum::<f32>();
            }
            ms[k] += t.elapsed().as_secs_f64() * 1e3 / (n * rounds) as f64;
        }
    }
    for (kernel, t) in kernels.iter().zip(&ms) {
        println!("{kernel:?}: {t:.2} ms per 128x192 frame pair ({:.2}x the portable kernel's time)", t / ms[0]);
    }
    println!("(checksum {acc})");
}
