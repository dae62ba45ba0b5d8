//! Times `speed_map` at 128x192 on a noisy synthetic pair (a quick check while optimising; the
//! benchmark on Ped2 frames is `cargo bench -p sfn-edge --bench replay`, with and without the cue).
fn main() {
    let (h, w) = (128, 192);
    let mut state = 12345u64;
    let mut noise = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let a: Vec<f32> = (0..h * w).map(|i| ((i % w) as f32 * 0.37 + (i / w) as f32 * 0.91).sin() * 0.3 + 0.2 * noise()).collect();
    // The content moves one pixel right, with fresh noise: block matches differ from pixel to pixel.
    let b: Vec<f32> = (0..h * w).map(|i| a[i - usize::from(i % w > 0)] + 0.2 * noise()).collect();
    let n = 50;
    let t = std::time::Instant::now();
    let mut acc = 0f32;
    for _ in 0..n {
        acc += sfn_scoring::speed_map(&a, &b, 1, h, w, 3, 12, 0.1).unwrap().iter().sum::<f32>();
    }
    println!("{:.2} ms per 128x192 frame pair (checksum {acc})", t.elapsed().as_secs_f64() * 1e3 / n as f64);
}
