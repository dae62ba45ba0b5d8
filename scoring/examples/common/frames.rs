//! The synthetic 128x192 frame pair the scoring examples time: a textured frame with noise, and the same
//! content moved one pixel right with fresh noise (block matches differ from pixel to pixel).

/// (frame t, frame t+1), gray, 128x192, and a noise source for more frames.
pub fn moving_pair(h: usize, w: usize) -> (Vec<f32>, Vec<f32>, impl FnMut() -> f32) {
    let mut state = 12345u64;
    let mut noise = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let a: Vec<f32> = (0..h * w).map(|i| ((i % w) as f32 * 0.37 + (i / w) as f32 * 0.91).sin() * 0.3 + 0.2 * noise()).collect();
    let b: Vec<f32> = (0..h * w).map(|i| a[i - usize::from(i % w > 0)] + 0.2 * noise()).collect();
    (a, b, noise)
}
