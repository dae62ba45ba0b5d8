//! The speed map's kernels against the definition computed directly.

use super::*;
use crate::box_grid;
use crate::speed::{SpeedCue, SpeedFusion};

/// A textured frame: a smooth pseudo-random pattern.
pub(crate) fn texture(h: usize, w: usize) -> Vec<f32> {
    (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as f32, (i % w) as f32);
            (0.7 * (0.9 * x + 0.4 * y).sin() + 0.5 * (0.3 * x - 1.1 * y).cos() + 0.3 * (1.7 * x * 0.13 + y * 0.77).sin()) / 1.5
        })
        .collect()
}

pub(crate) fn shifted(f: &[f32], h: usize, w: usize, dy: isize, dx: isize) -> Vec<f32> {
    (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as isize - dy, (i % w) as isize - dx);
            f[(y.clamp(0, h as isize - 1) as usize) * w + x.clamp(0, w as isize - 1) as usize]
        })
        .collect()
}

#[test]
fn still_frames_have_speed_zero_and_a_shift_is_measured() {
    let (h, w) = (24, 32);
    let a = texture(h, w);
    assert!(speed_map(&a, &a, 1, h, w, 3, 6, 0.0).unwrap().iter().all(|&v| v == 0.0));
    // Content moved 2 right and 1 down: away from the borders every pixel reads sqrt(5).
    let b = shifted(&a, h, w, 1, 2);
    let v = speed_map(&a, &b, 1, h, w, 3, 6, 0.0).unwrap();
    // A true shift matches exactly, so any margin keeps it.
    assert_eq!(speed_map(&a, &b, 1, h, w, 3, 6, 0.5).unwrap(), v);
    for y in 6..h - 6 {
        for x in 6..w - 6 {
            assert!((v[y * w + x] - 5f32.sqrt()).abs() < 1e-6, "({y},{x}) = {}", v[y * w + x]);
        }
    }
    // Beyond the radius the match is wrong but never longer than the radius allows.
    let far = shifted(&a, h, w, 0, 5);
    assert!(speed_map(&a, &far, 1, h, w, 2, 6, 0.0).unwrap().iter().all(|&v| v <= 8f32.sqrt() + 1e-6));
    // Out-of-range margins are refused by name.
    for m in [-0.1, 1.0, f32::NAN] {
        assert!(speed_map(&a, &a, 1, h, w, 3, 6, m).unwrap_err().to_string().contains("margin"), "{m}");
    }
}

/// The definition, computed directly: block sums pixel by pixel.
#[allow(clippy::too_many_arguments)]
fn speed_naive(last: &[f32], next: &[f32], c: usize, h: usize, w: usize, r: usize, b: usize, margin: f32) -> Vec<f32> {
    let r = r as isize;
    let mut shifts: Vec<(isize, isize)> = (-r..=r).flat_map(|dy| (-r..=r).map(move |dx| (dy, dx))).collect();
    shifts.sort_by_key(|&(dy, dx)| dy * dy + dx * dx);
    let span = |i: usize, n: usize| (i.saturating_sub(b / 2), (i.saturating_sub(b / 2) + b).min(n));
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let ((y0, y1), (x0, x1)) = (span(y, h), span(x, w));
            let (mut best, mut zero) = (u64::MAX, 0u64);
            for &(dy, dx) in &shifts {
                let mut sum = 0u64;
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        let (sy, sx) = ((yy as isize + dy).clamp(0, h as isize - 1) as usize, (xx as isize + dx).clamp(0, w as isize - 1) as usize);
                        for k in 0..c {
                            let d = next[k * h * w + yy * w + xx] - last[k * h * w + sy * w + sx];
                            sum += ((d * d).min(4.0) * 65536.0) as u64;
                        }
                    }
                }
                if (dy, dx) == (0, 0) {
                    zero = sum;
                }
                if sum < best {
                    best = sum;
                    out[y * w + x] = ((dy * dy + dx * dx) as f32).sqrt();
                }
            }
            if best as f64 > (1.0 - f64::from(margin)) * zero as f64 {
                out[y * w + x] = 0.0;
            }
        }
    }
    out
}

/// The speed map by every kernel this CPU can run.
#[allow(clippy::too_many_arguments)]
fn every_kernel(last: &[f32], next: &[f32], c: usize, h: usize, w: usize, r: usize, b: usize, m: f32) -> Vec<(SpeedKernel, Vec<f32>)> {
    SpeedKernel::available().into_iter().map(|k| (k, speed_map_with(k, last, next, c, h, w, r, b, m).unwrap())).collect()
}

#[test]
fn fast_path_equals_the_definition() {
    let mut state = 7u64;
    let mut noise = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    // Frames narrower than a block, odd and even blocks, block 1, two and three channels, the
    // product's geometry (128x192, radius 3, block 12); all but the last pack a block sum and its
    // shift into one key, the last (large three-channel blocks) keeps them side by side. Radius 3 with
    // one channel and frames at least a block wide takes the lanes layout (the second list: a frame
    // exactly a block wide, one lower than a block, block 1, an odd block, then the product's).
    let cases: Vec<_> = [(1, 20, 30, 3, 12), (1, 9, 7, 2, 8), (2, 12, 17, 1, 5), (1, 15, 16, 2, 1), (1, 6, 40, 4, 6), (3, 14, 21, 2, 7)]
        .into_iter()
        .chain([(1, 12, 12, 3, 12), (1, 8, 20, 3, 12), (1, 17, 23, 3, 1), (1, 19, 26, 3, 7), (1, 128, 192, 3, 12), (3, 30, 34, 2, 24)])
        .collect();
    let packs = |&(c, h, w, r, b): &(usize, usize, usize, usize, usize)| packed_bits(c, h, w, b, (2 * r + 1) * (2 * r + 1)).is_some();
    assert_eq!(cases.iter().filter(|case| !packs(case)).count(), 1);
    assert_eq!(packed_bits(1, 128, 192, 12, 49), Some(6));
    let mut zeroed = 0;
    for (case, (c, h, w, r, b)) in cases.into_iter().enumerate() {
        // Every other case spans more than 2 (squared differences above the clip at 4): the lanes
        // layout's exact quantisation, not its shortcut for frames of a narrow range.
        let span = if case % 2 == 0 { 1.0 } else { 6.0 };
        let last: Vec<f32> = (0..c * h * w).map(|_| span * noise()).collect();
        let next: Vec<f32> = last.iter().enumerate().map(|(i, v)| 0.5 * (v + last[(i + 3) % last.len()]) + 0.1 * span * noise()).collect();
        for m in [0.0, 0.1, 0.3] {
            if h == 128 && m == 0.3 {
                continue; // the direct definition is slow at this size: two margins suffice
            }
            let naive = speed_naive(&last, &next, c, h, w, r, b, m);
            for (kernel, fast) in every_kernel(&last, &next, c, h, w, r, b, m) {
                assert!(fast == naive, "{kernel:?}: {c}x{h}x{w} r{r} b{b} margin {m}");
            }
            let fast = speed_map(&last, &next, c, h, w, r, b, m).unwrap();
            if m > 0.0 {
                // The margin only ever zeroes pixels.
                let plain = speed_map(&last, &next, c, h, w, r, b, 0.0).unwrap();
                assert!(fast.iter().zip(&plain).all(|(&f, &p)| f == p || f == 0.0));
                zeroed += fast.iter().zip(&plain).filter(|(&f, &p)| f != p).count();
            }
        }
    }
    // On these noisy pairs the margins do zero pixels (the comparison above is not vacuous).
    assert!(zeroed > 0);
}

/// Values outside any image range (huge, infinite, NaN) quantise as the definition's saturating
/// conversion does, in every kernel.
#[test]
fn extreme_values_match_the_definition() {
    let (h, w) = (10, 13);
    let specials = [0.0, 1.0, -1.0, 1e30, -1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.5, 1e-20];
    let last: Vec<f32> = (0..h * w).map(|i| specials[i % specials.len()]).collect();
    let next: Vec<f32> = (0..h * w).map(|i| specials[(i * 7 + 3) % specials.len()]).collect();
    // Radius 2 runs the general layout, radius 3 the lanes layout.
    for (r, m) in [(2, 0.0), (2, 0.2), (3, 0.0), (3, 0.2)] {
        let naive = speed_naive(&last, &next, 1, h, w, r, 5, m);
        for (kernel, fast) in every_kernel(&last, &next, 1, h, w, r, 5, m) {
            assert!(fast == naive, "{kernel:?}: radius {r}, margin {m}");
        }
    }
}

#[test]
fn a_moving_object_on_a_flat_background() {
    let (h, w) = (32, 48);
    let mut a = vec![0f32; h * w];
    for y in 10..16 {
        for x in 10..14 {
            a[y * w + x] = 1.0;
        }
    }
    let b = shifted(&a, h, w, 0, 3);
    let v = speed_map(&a, &b, 1, h, w, 4, 8, 0.0).unwrap();
    assert_eq!(v[13 * w + 14], 3.0, "inside the object");
    assert_eq!(v[28 * w + 40], 0.0, "far from it");
    // Region pooling: the box over the object beats the others.
    let cue = SpeedCue { radius: 4, block: 8, window: 16, stride: 8, weight: 1.0, fusion: SpeedFusion::Max, margin: 0.0 };
    let means = cue.box_means(&a, &b, 1, h, w).unwrap();
    let (imax, _) = means.iter().enumerate().fold((0, f32::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m });
    assert_eq!(box_grid(h, w, 16, 8), [3, 5]);
    assert!([0, 1, 5, 6].contains(&imax), "box {imax}");
}

#[test]
fn channels_are_averaged_and_shapes_checked() {
    let (h, w) = (16, 16);
    let a = texture(h, w);
    let b = shifted(&a, h, w, 1, 0);
    let two = |f: &[f32]| [f, f].concat();
    assert_eq!(speed_map(&two(&a), &two(&b), 2, h, w, 2, 4, 0.0).unwrap(), speed_map(&a, &b, 1, h, w, 2, 4, 0.0).unwrap());
    let e = speed_map(&a, &b[1..], 1, h, w, 2, 4, 0.0).unwrap_err();
    assert!(e.to_string().contains("next frame"), "{e}");
    assert!(speed_map(&a, &b, 1, h, w, 0, 4, 0.0).is_err());
    assert!(speed_map(&a, &b, 1, h, w, 9, 4, 0.0).is_err());
    assert!(speed_map(&a, &b, 1, h, w, 2, 49, 0.0).is_err());
    let four = |f: &[f32]| [f, f, f, f].concat();
    assert!(speed_map(&four(&a), &four(&b), 4, h, w, 2, 4, 0.0).unwrap_err().to_string().contains("channels"));
}
