//! Times every speed-map kernel this CPU runs on a noisy synthetic pair, side by side, at the two Ped2
//! settings: 128x192 with radius 3 and 12x12 blocks, and 160x240 with radius 4 and 15x15 blocks (the
//! committed model's). The benchmark on Ped2 frames is `cargo bench -p sfn-edge --bench replay`, with
//! and without the cue.
#[path = "common/frames.rs"]
mod frames;

fn main() {
    // (height, width, radius, block)
    let settings = [(128, 192, 3, 12), (160, 240, 4, 15)];
    let pairs: Vec<_> = settings.iter().map(|&(h, w, _, _)| frames::moving_pair(h, w)).collect();
    // Every kernel this CPU runs at both settings, interleaved in rounds so that they share the
    // machine's state.
    let kernels = sfn_scoring::SpeedKernel::available();
    let (n, rounds) = (20, 5);
    let mut ms = vec![vec![0f64; kernels.len()]; settings.len()];
    let mut acc = 0f32;
    for _ in 0..rounds {
        for (s, &(h, w, radius, block)) in settings.iter().enumerate() {
            let (a, b, _) = &pairs[s];
            for (k, &kernel) in kernels.iter().enumerate() {
                let t = std::time::Instant::now();
                for _ in 0..n {
                    acc += sfn_scoring::speed_map_with(kernel, a, b, 1, h, w, radius, block, 0.1).unwrap().iter().sum::<f32>();
                }
                ms[s][k] += t.elapsed().as_secs_f64() * 1e3 / (n * rounds) as f64;
            }
        }
    }
    for (s, &(h, w, radius, block)) in settings.iter().enumerate() {
        for (k, kernel) in kernels.iter().enumerate() {
            let t = ms[s][k];
            println!(
                "{kernel:?}: {t:.2} ms per {h}x{w} frame pair, radius {radius}, block {block} ({:.2}x the portable kernel's time at this setting, {:.2}x this kernel's at 128x192)",
                t / ms[s][0],
                t / ms[0][k]
            );
        }
    }
    println!("(checksum {acc})");
}
