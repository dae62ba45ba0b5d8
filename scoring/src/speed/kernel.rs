//! The speed map's kernel: block matching by exact integer block sums, compiled for AVX-512, AVX2 and
//! portable code and picked at run time; every build gives the same map bit for bit.

use super::MAX_SPEED_BLOCK;
use super::MAX_SPEED_RADIUS;
use crate::{check_frame_pair, ScoringError};

mod lanes;

/// v(y, x) = |(dy, dx)| of the shift that best matches the block around (y, x) of `next` in `last`:
/// argmin over |dy|, |dx| <= r of sum over the block B(y, x) and the channels of
/// (next(y', x') - last(clamp(y' + dy), clamp(x' + dx)))^2, each term in f32 rounded down to a multiple
/// of 2^-16 so that the sums are exact (integers) and equal sums are true ties.
///
/// Shifts are tried in order of increasing length (row-major among equal lengths) and one replaces
/// the best so far only when it matches strictly better, so a block that does not change (or has no
/// texture) gets speed 0. With a `margin` m > 0 the best shift counts only where its sum is at most
/// (1 - m) times the zero shift's (compared in f64 on the exact sums), else v = 0: in flat or barely
/// changing blocks the sums of all shifts differ by noise alone, and the shift that wins there says
/// nothing about motion. The block B(y, x) is rows `y - b/2 .. y - b/2 + b` and likewise columns,
/// clipped to the frame; `last` is read with coordinates clamped to the frame. Frames are CHW `f32`.
#[allow(clippy::too_many_arguments)]
pub fn speed_map(last: &[f32], next: &[f32], channels: usize, height: usize, width: usize, radius: usize, block: usize, margin: f32) -> Result<Vec<f32>, ScoringError> {
    speed_map_with(SpeedKernel::best(), last, next, channels, height, width, radius, block, margin)
}

/// The builds of the speed map's kernel: the same operations, so the same map bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeedKernel {
    /// Baseline instructions (what aarch64 runs).
    Portable,
    /// x86-64 with AVX2 (8 lanes).
    Avx2,
    /// x86-64 with AVX-512F (16 lanes).
    Avx512,
}

impl SpeedKernel {
    /// The kernels this CPU runs, slowest first.
    pub fn available() -> Vec<SpeedKernel> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut k = vec![SpeedKernel::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            k.push(SpeedKernel::Avx2);
            if std::arch::is_x86_feature_detected!("avx512f") {
                k.push(SpeedKernel::Avx512);
            }
        }
        k
    }

    /// The fastest kernel this CPU runs ([`speed_map`]'s).
    pub fn best() -> SpeedKernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return if std::arch::is_x86_feature_detected!("avx512f") { SpeedKernel::Avx512 } else { SpeedKernel::Avx2 };
        }
        SpeedKernel::Portable
    }
}

/// [`speed_map`] computed by one given kernel (for tests and benchmarks; one this CPU cannot run is an
/// error).
#[allow(clippy::too_many_arguments)]
pub fn speed_map_with(kernel: SpeedKernel, last: &[f32], next: &[f32], channels: usize, height: usize, width: usize, radius: usize, block: usize, margin: f32) -> Result<Vec<f32>, ScoringError> {
    check_frame_pair([("last frame", last), ("next frame", next)], channels, height, width)?;
    if !(1..=MAX_SPEED_RADIUS).contains(&radius) || !(1..=MAX_SPEED_BLOCK).contains(&block) {
        return Err(ScoringError::BadParameter { name: "speed radius/block", value: radius as f32, reason: "radius must be 1..=8 and block 1..=48" });
    }
    if channels > 3 {
        return Err(ScoringError::BadShape { field: "channels", reason: format!("{channels}: the speed cue takes 1 to 3 channels") });
    }
    if !(0.0..1.0).contains(&margin) {
        return Err(ScoringError::BadParameter { name: "speed margin", value: margin, reason: "must be in [0, 1)" });
    }
    let r = radius as isize;
    let mut shifts: Vec<(isize, isize)> = (-r..=r).flat_map(|dy| (-r..=r).map(move |dx| (dy, dx))).collect();
    shifts.sort_by_key(|&(dy, dx)| dy * dy + dx * dx); // stable: row-major among equal lengths
    if !SpeedKernel::available().contains(&kernel) {
        return Err(ScoringError::BadParameter { name: "speed kernel", value: f32::NAN, reason: "this CPU cannot run it" });
    }
    match kernel {
        SpeedKernel::Portable => Ok(speed_map_kernel::<false>(last, next, channels, height, width, radius, block, margin, &shifts)),
        // SAFETY: the CPU has AVX2 (and AVX-512F for that kernel): `available` checked it above.
        #[cfg(target_arch = "x86_64")]
        SpeedKernel::Avx2 => Ok(unsafe { speed_map_avx2(last, next, channels, height, width, radius, block, margin, &shifts) }),
        #[cfg(target_arch = "x86_64")]
        SpeedKernel::Avx512 => Ok(unsafe { speed_map_avx512(last, next, channels, height, width, radius, block, margin, &shifts) }),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("only the portable kernel is available off x86-64"),
    }
}

/// [`speed_map_kernel`] compiled for AVX2 (8 lanes where the baseline has 4): the same operations, so
/// the same result bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn speed_map_avx2(last: &[f32], next: &[f32], channels: usize, height: usize, width: usize, radius: usize, block: usize, margin: f32, shifts: &[(isize, isize)]) -> Vec<f32> {
    speed_map_kernel::<true>(last, next, channels, height, width, radius, block, margin, shifts)
}

/// [`speed_map_kernel`] compiled for AVX-512F (16 lanes): the same operations, so the same result bit
/// for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn speed_map_avx512(last: &[f32], next: &[f32], channels: usize, height: usize, width: usize, radius: usize, block: usize, margin: f32, shifts: &[(isize, isize)]) -> Vec<f32> {
    speed_map_kernel::<true>(last, next, channels, height, width, radius, block, margin, shifts)
}

/// The body of [`speed_map`] (arguments already checked): for one channel, radius 3 and frames at
/// least a block wide (the product's case) the shifts dx of a pixel in the lanes ([`lanes`]); otherwise
/// one shift at a time over the whole frame, as below.
///
/// Block sums are compared across shifts, so they are computed exactly: each squared difference is
/// rounded down to a multiple of 2^-16 (at most 4, i.e. 2^18 units; pixels one 8-bit level apart differ
/// by 4 units) and the block sums are formed in wrapping i32 arithmetic, in which the differences of
/// running sums are exact while a block's true sum stays below 2^31 (blocks of at most MAX_SPEED_BLOCK^2
/// pixels, 3 channels: 48 * 48 * 3 * 2^18 < 2^31). Ties then are true ties, and go to the shorter shift.
/// Per shift: the quantised differences of every row against `last` padded by replicating its border
/// (the same as reading it with clamped coordinates), each row's horizontal block sums as differences
/// of its prefix sums, and the block sums as a running window of those down the columns; the shift
/// replaces the best so far only where it matches strictly better (as one 32-bit key where the sums
/// allow, [`speed_map_body`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn speed_map_kernel<const AVX2: bool>(last: &[f32], next: &[f32], channels: usize, height: usize, width: usize, radius: usize, block: usize, margin: f32, shifts: &[(isize, isize)]) -> Vec<f32> {
    match packed_bits(channels, height, width, block, shifts.len()) {
        Some(bits) if lanes::applies(channels, width, radius, block) => {
            let rows = spans(height, block);
            lanes::speed_map::<AVX2>(lanes::Job { last, next, height, width, block, shifts, bits, rows: &rows, margin })
        }
        Some(bits) => speed_map_body::<AVX2, true>(last, next, channels, height, width, radius, block, margin, shifts, bits),
        None => speed_map_body::<AVX2, false>(last, next, channels, height, width, radius, block, margin, shifts, 0),
    }
}

/// The bits that hold a shift's index where a block sum and that index pack into one 32-bit key
/// (the largest block sum, every term at its 2^18 ceiling, times 2^bits, plus the last index, below
/// 2^32), else None.
fn packed_bits(channels: usize, height: usize, width: usize, block: usize, shifts: usize) -> Option<u32> {
    let bits = usize::BITS - (shifts - 1).leading_zeros();
    let max_sum = (block.min(height) * block.min(width) * channels) as u64 * (1 << 18);
    ((max_sum << bits) + (shifts as u64 - 1) < 1 << 32).then_some(bits)
}

/// [`speed_map_kernel`]'s work. PACKED (where a block sum times 2^`bits` plus a shift's index stays
/// below 2^32, as for the product's 12x12 blocks and radius 3): every difference term is scaled by
/// 2^`bits`, so that a block sum plus the shift's index is one 32-bit key, sum * 2^bits + index, and
/// keeping the best shift is one unsigned minimum (a smaller sum wins; an equal sum keeps the earlier,
/// shorter shift, whose index is smaller). Otherwise the best sum and its shift's index are kept side
/// by side and updated by a compare and a select.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn speed_map_body<const AVX2: bool, const PACKED: bool>(
    last: &[f32],
    next: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    radius: usize,
    block: usize,
    margin: f32,
    shifts: &[(isize, isize)],
    bits: u32,
) -> Vec<f32> {
    let plane = height * width;
    let (pad_h, pad_w) = (height + 2 * radius, width + 2 * radius);
    let mut padded = vec![0f32; channels * pad_h * pad_w];
    for c in 0..channels {
        for py in 0..pad_h {
            let sy = py.saturating_sub(radius).min(height - 1);
            let src = &last[c * plane + sy * width..c * plane + (sy + 1) * width];
            let dst = &mut padded[(c * pad_h + py) * pad_w..(c * pad_h + py + 1) * pad_w];
            dst[..radius].fill(src[0]);
            dst[radius..radius + width].copy_from_slice(src);
            dst[radius + width..].fill(src[width - 1]);
        }
    }
    let (rows, cols) = (spans(height, block), spans(width, block));
    // d * d is at least 0 and, clipped at 4 (NaN clips to 4 too), at most 2^18 after scaling: always
    // representable, so the conversion needs no saturation (the definition's `as` cast gives the same).
    #[inline(always)]
    fn quantize(n: f32, l: f32) -> i32 {
        let d = n - l;
        let q = (d * d).min(4.0) * 65536.0;
        // SAFETY: q is finite and in [0, 2^18] (see above).
        unsafe { q.to_int_unchecked::<i32>() }
    }
    // One difference term, scaled by 2^bits in the packed layout (at most 2^27: no overflow).
    let term = |n: f32, l: f32| -> i32 {
        if PACKED {
            quantize(n, l) << bits
        } else {
            quantize(n, l)
        }
    };
    // The best match so far: its block sum and its shift's index, or (packed) its key. Every true sum is
    // below i32::MAX (every key below u32::MAX, see above), so the first shift always replaces the
    // initial value.
    let (mut best, mut best_shift, mut keys) = if PACKED { (Vec::new(), Vec::new(), vec![u32::MAX; plane]) } else { (vec![i32::MAX; plane], vec![0u32; plane], Vec::new()) };
    let mut zero: Vec<i32> = Vec::new();
    // At most `block` rows are in the window at once (rows leave before new ones enter).
    let ring_rows = block.min(height);
    let mut ring = vec![0i32; ring_rows * width];
    let mut colsum = vec![0i32; width];
    let mut prefix = vec![0i32; width + 1];
    for (si, &(dy, dx)) in shifts.iter().enumerate() {
        // Block sums: column sums over the block's rows as a running window (it only moves down), then
        // their horizontal block sums. The rows of differences in the window live in a ring.
        colsum.fill(0);
        let (mut win_lo, mut win_hi) = (0usize, 0usize);
        let si = si as u32;
        let px = (dx + radius as isize) as usize;
        for (y, &(y0, y1)) in rows.iter().enumerate() {
            if channels == 1 && win_lo + 1 == y0 && win_hi + 1 == y1 {
                // The steady state, one row out and one in (the same ring slot: the window is full),
                // in one pass.
                let slot = win_hi % ring_rows;
                let py = (win_hi as isize + dy + radius as isize) as usize;
                let lrow = &padded[py * pad_w + px..][..width];
                let nrow = &next[win_hi * width..][..width];
                let old = win_lo % ring_rows;
                debug_assert_eq!(old, slot);
                for (((s, d), &n), &l) in colsum.iter_mut().zip(&mut ring[slot * width..(slot + 1) * width]).zip(nrow).zip(lrow) {
                    let q = term(n, l);
                    *s = s.wrapping_add(q).wrapping_sub(*d);
                    *d = q;
                }
                (win_lo, win_hi) = (y0, y1);
            }
            while win_lo < y0 {
                let slot = win_lo % ring_rows;
                for (s, &d) in colsum.iter_mut().zip(&ring[slot * width..(slot + 1) * width]) {
                    *s = s.wrapping_sub(d);
                }
                win_lo += 1;
            }
            while win_hi < y1 {
                // diff(r, x) = sum over channels of q((next(r, x) - last(clamp(r + dy), clamp(x + dx)))^2).
                let slot = win_hi % ring_rows;
                let drow = &mut ring[slot * width..(slot + 1) * width];
                let py = (win_hi as isize + dy + radius as isize) as usize;
                for c in 0..channels {
                    let lrow = &padded[(c * pad_h + py) * pad_w + px..][..width];
                    let nrow = &next[c * plane + win_hi * width..][..width];
                    if c == 0 {
                        for ((d, &n), &l) in drow.iter_mut().zip(nrow).zip(lrow) {
                            *d = term(n, l);
                        }
                    } else {
                        for ((d, &n), &l) in drow.iter_mut().zip(nrow).zip(lrow) {
                            *d = d.wrapping_add(term(n, l));
                        }
                    }
                }
                for (s, &d) in colsum.iter_mut().zip(&*drow) {
                    *s = s.wrapping_add(d);
                }
                win_hi += 1;
            }
            let row = y * width..(y + 1) * width;
            if PACKED {
                keep_key_row::<AVX2>(&colsum, block, &cols, &mut keys[row], si, &mut prefix);
            } else {
                keep_best_row::<AVX2>(&colsum, block, &cols, &mut best[row.clone()], &mut best_shift[row], si, &mut prefix);
            }
        }
        // The first shift is (0, 0): keep its sums for the margin test.
        if si == 0 && margin > 0.0 {
            zero = if PACKED { keys.iter().map(|&k| (k >> bits) as i32).collect() } else { best.clone() };
        }
    }
    if PACKED {
        return finish_keys(&keys, &zero, bits, shifts, margin);
    }
    finish(best.into_iter().zip(best_shift), &zero, shifts, margin)
}

/// The block extent of each row (or column) of a frame `n` long, clipped to the frame.
fn spans(n: usize, block: usize) -> Vec<(usize, usize)> {
    (0..n)
        .map(|i| {
            let lo = i.saturating_sub(block / 2);
            (lo, (lo + block).min(n))
        })
        .collect()
}

/// [`finish`] from packed keys (block sum * 2^bits + shift index).
fn finish_keys(keys: &[u32], zero: &[i32], bits: u32, shifts: &[(isize, isize)], margin: f32) -> Vec<f32> {
    // Sums below 2^(32 - bits) <= 2^31 (see `packed_bits`): they fit an i32.
    let mask = (1u32 << bits) - 1;
    finish(keys.iter().map(|&k| ((k >> bits) as i32, k & mask)), zero, shifts, margin)
}

/// The map from each pixel's best sum and its shift's index and (with a margin) the zero shift's sum:
/// the shift's length, or 0 where the best does not beat the zero shift by the margin.
fn finish(best: impl Iterator<Item = (i32, u32)>, zero: &[i32], shifts: &[(isize, isize)], margin: f32) -> Vec<f32> {
    // A table of every index up to 511 (289 shifts at radius 8), so that the look-up needs no bounds
    // check.
    let mut lens = [0f32; 512];
    for (l, &(dy, dx)) in lens.iter_mut().zip(shifts) {
        *l = ((dy * dy + dx * dx) as f32).sqrt();
    }
    let len = |s: u32| lens[(s & 511) as usize];
    if margin > 0.0 {
        let keep = 1.0 - f64::from(margin);
        return best.zip(zero).map(|((b, s), &z)| if f64::from(b) <= keep * f64::from(z) { len(s) } else { 0.0 }).collect();
    }
    best.map(|(_, s)| len(s)).collect()
}

/// out[x] = row[0] + ... + row[x] in wrapping arithmetic; returns the total.
#[inline(always)]
fn prefix_sums<const AVX2: bool>(row: &[i32], out: &mut [i32]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: AVX2 is only requested from `speed_map_avx2`, which runs where the CPU has it.
        return unsafe { prefix_sums_avx2(row, out) };
    }
    let mut acc = 0i32;
    for (p, &s) in out.iter_mut().zip(row) {
        acc = acc.wrapping_add(s);
        *p = acc;
    }
    acc
}

/// [`prefix_sums`] eight at a time by an in-register scan; wrapping addition is associative, so the
/// sums are the same.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn prefix_sums_avx2(row: &[i32], out: &mut [i32]) -> i32 {
    use std::arch::x86_64::*;
    let len = row.len().min(out.len());
    let n = len / 8 * 8;
    let mut carry = _mm256_setzero_si256();
    let last = _mm256_set1_epi32(7);
    let mut done = 0;
    while done < n {
        // SAFETY: done + 8 <= n <= the length of both slices (unaligned load and store).
        let mut x = unsafe { _mm256_loadu_si256(row.as_ptr().add(done) as *const __m256i) };
        x = _mm256_add_epi32(x, _mm256_slli_si256::<4>(x));
        x = _mm256_add_epi32(x, _mm256_slli_si256::<8>(x));
        // The low half's total into every lane of the high half.
        let low_total = _mm256_shuffle_epi32::<0xFF>(x);
        x = _mm256_add_epi32(x, _mm256_permute2x128_si256::<0x08>(low_total, low_total));
        x = _mm256_add_epi32(x, carry);
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(done) as *mut __m256i, x) };
        carry = _mm256_permutevar8x32_epi32(x, last);
        done += 8;
    }
    let mut acc = _mm256_cvtsi256_si32(carry);
    for (p, &s) in out[done..len].iter_mut().zip(&row[done..len]) {
        acc = acc.wrapping_add(s);
        *p = acc;
    }
    acc
}

/// Where the block sum at x is strictly below best[x]: best[x] = that sum and shift[x] = si (shifts come
/// in order, so ties stay with the earlier, shorter shift). The block sum is the sum of row[x0..x1] over
/// the block columns `cols[x]` = (x0, x1) in wrapping arithmetic: a difference of the row's prefix sums
/// (left of the interior all blocks are the first one; right of it, the total less a prefix). Sums and
/// shifts are 32-bit lanes side by side, so the update is a compare, a minimum and a select, 8 lanes
/// under AVX2.
#[inline(always)]
fn keep_best_row<const AVX2: bool>(row: &[i32], block: usize, cols: &[(usize, usize)], best: &mut [i32], shift: &mut [u32], si: u32, prefix: &mut [i32]) {
    // A select by bit masks, written so that both stores are unconditional: as a branch or a select,
    // compilers turn the shift's update into a masked store, which is slow (microcoded on AMD).
    #[inline(always)]
    fn keep(b: &mut i32, s: &mut u32, sum: i32, si: u32) {
        let better = 0u32.wrapping_sub(u32::from(sum < *b));
        *s = (si & better) | (*s & !better);
        *b = (*b).min(sum);
    }
    let width = row.len();
    let total = prefix_sums::<AVX2>(row, &mut prefix[1..]);
    let prefix = &*prefix;
    let half = block / 2;
    if width >= block {
        let starts = width - block + 1;
        let interior = half..half + starts;
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if AVX2 {
            // SAFETY: AVX2 is only requested from the kernels that run where the CPU has it.
            done = unsafe { keep_best_interior_avx2(&prefix[..block + starts], block, &mut best[interior.clone()], &mut shift[interior.clone()], si) };
        }
        for (((b, s), &p1), &p0) in best[interior.clone()].iter_mut().zip(&mut shift[interior]).zip(&prefix[block..block + starts]).zip(&prefix[..starts]).skip(done) {
            keep(b, s, p1.wrapping_sub(p0), si);
        }
        let first = prefix[block];
        for (b, s) in best[..half].iter_mut().zip(&mut shift[..half]) {
            keep(b, s, first, si);
        }
        for x in half + starts..width {
            keep(&mut best[x], &mut shift[x], total.wrapping_sub(prefix[x - half]), si);
        }
    } else {
        for ((b, s), &(x0, x1)) in best.iter_mut().zip(shift.iter_mut()).zip(cols) {
            keep(b, s, prefix[x1].wrapping_sub(prefix[x0]), si);
        }
    }
}

/// The interior of [`keep_best_row`] eight blocks at a time: sum = prefix[x + block] - prefix[x], and
/// where sum < best[x], best[x] = sum and shift[x] = si; returns how many leading blocks it did (a
/// multiple of 8; the caller does the rest).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn keep_best_interior_avx2(prefix: &[i32], block: usize, best: &mut [i32], shift: &mut [u32], si: u32) -> usize {
    use std::arch::x86_64::*;
    let n = best.len().min(shift.len()).min(prefix.len().saturating_sub(block)) / 8 * 8;
    let si = _mm256_set1_epi32(si as i32);
    let mut x = 0;
    while x < n {
        // SAFETY: x + 8 <= n, and n is at most the length of `best`, of `shift` and of `prefix` less
        // `block` (unaligned loads and stores).
        unsafe {
            let p1 = _mm256_loadu_si256(prefix.as_ptr().add(x + block) as *const __m256i);
            let p0 = _mm256_loadu_si256(prefix.as_ptr().add(x) as *const __m256i);
            let sum = _mm256_sub_epi32(p1, p0);
            let b = _mm256_loadu_si256(best.as_ptr().add(x) as *const __m256i);
            let s = _mm256_loadu_si256(shift.as_ptr().add(x) as *const __m256i);
            let better = _mm256_cmpgt_epi32(b, sum);
            _mm256_storeu_si256(best.as_mut_ptr().add(x) as *mut __m256i, _mm256_min_epi32(b, sum));
            _mm256_storeu_si256(shift.as_mut_ptr().add(x) as *mut __m256i, _mm256_blendv_epi8(s, si, better));
        }
        x += 8;
    }
    n
}

/// The packed [`keep_best_row`]: keys[x] = min(keys[x], block sum + si) as unsigned 32-bit numbers,
/// where the block sum (of terms already scaled by 2^bits) is the same difference of prefix sums.
#[inline(always)]
fn keep_key_row<const AVX2: bool>(row: &[i32], block: usize, cols: &[(usize, usize)], keys: &mut [u32], si: u32, prefix: &mut [i32]) {
    let width = row.len();
    let total = prefix_sums::<AVX2>(row, &mut prefix[1..]);
    let prefix = &*prefix;
    let key = |sum: i32| (sum as u32).wrapping_add(si);
    let half = block / 2;
    if width >= block {
        let starts = width - block + 1;
        for ((k, &p1), &p0) in keys[half..half + starts].iter_mut().zip(&prefix[block..block + starts]).zip(&prefix[..starts]) {
            *k = (*k).min(key(p1.wrapping_sub(p0)));
        }
        let first = key(prefix[block]);
        for k in &mut keys[..half] {
            *k = (*k).min(first);
        }
        for x in half + starts..width {
            keys[x] = keys[x].min(key(total.wrapping_sub(prefix[x - half])));
        }
    } else {
        for (k, &(x0, x1)) in keys.iter_mut().zip(cols) {
            *k = (*k).min(key(prefix[x1].wrapping_sub(prefix[x0])));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
