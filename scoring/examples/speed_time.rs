//! Times `speed_map` at 128x192 on a textured synthetic pair (a quick check while optimising; the
//! benchmark on Ped2 frames is `cargo bench -p sfn-edge --bench replay`).
fn main() {
    let (h, w) = (128, 192);
    let a: Vec<f32> = (0..h * w).map(|i| ((i % w) as f32 * 0.37 + (i / w) as f32 * 0.91).sin()).collect();
    let b: Vec<f32> = (0..h * w).map(|i| ((i % w) as f32 * 0.37 + 0.5 + (i / w) as f32 * 0.91).sin()).collect();
    let n = 50;
    let t = std::time::Instant::now();
    let mut acc = 0f32;
    for _ in 0..n {
        acc += sfn_scoring::speed_map(&a, &b, 1, h, w, 3, 12).unwrap().iter().sum::<f32>();
    }
    println!("{:.2} ms per 128x192 frame pair (checksum {acc})", t.elapsed().as_secs_f64() * 1e3 / n as f64);
}
