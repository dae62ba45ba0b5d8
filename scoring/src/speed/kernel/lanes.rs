//! The speed map's kernel with the horizontal shifts in the lanes: for one-channel frames at least a
//! block wide, radius 3 and packed keys (the product's 128x192, radius 3, 12x12 blocks).
//!
//! Why a second layout: with eight neighbouring pixels in the lanes (the general kernel), each row's
//! horizontal block sums need an in-register prefix scan, about half of that kernel's vector work.
//! Here one vector holds the 7 shifts dx of one pixel and one dy: the quantised difference is next(y,
//! x) broadcast less eight neighbouring values of `last`, the running sums down the columns and along
//! the row are plain lane-wise additions, and the best key is a lane-wise minimum; the lanes of a
//! pixel are reduced to one key once per row, after all dy. Per pixel and dy that is about ten vector
//! operations for seven shifts, against about twenty for eight in the general layout.
//!
//! The same definition, the same exact integer sums and the same keys (block sum * 2^bits + shift
//! index), so the map is bit for bit the general kernel's.

/// Lanes of one vector: the shifts dx of one pixel and one dy (7 of them used).
const LANES: usize = 8;
/// The radius this layout serves: 2r + 1 = 7 shifts dx fill seven of the eight lanes.
const R: usize = 3;
/// The dy of the radius.
const N_DY: usize = 2 * R + 1;
type V = [i32; LANES];
type K = [u32; LANES];

/// Storage for vectors on 32-byte boundaries: a vector load or store then never straddles two cache
/// lines.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Aligned([i32; LANES]);

/// The working memory of the kernel, kept by each thread from one frame to the next (a camera's
/// thread runs the cue every frame): no allocation, and the ring is never cleared (every slot is
/// written before it is read).
#[derive(Default)]
struct Scratch {
    colsum: Vec<Aligned>,
    ring: Vec<Aligned>,
    row_keys: Vec<Aligned>,
    sums: Vec<Aligned>,
    padded: Vec<f32>,
    scaled: Vec<f32>,
    keys: Vec<u32>,
    zero: Vec<i32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `v` with `n` vectors (new ones zero, the others as they were).
fn sized(v: &mut Vec<Aligned>, n: usize) -> &mut [Aligned] {
    v.resize(n, Aligned([0; LANES]));
    &mut v[..n]
}

/// The vectors of `v` (the same size; the alignment only grows).
fn lanes_of(v: &mut [Aligned]) -> &mut [V] {
    // SAFETY: Aligned is a repr(C) wrapper of V with a larger alignment.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut V, v.len()) }
}

/// The vectors of `v` as unsigned keys.
fn keys_of(v: &mut [Aligned]) -> &mut [K] {
    // SAFETY: as `lanes_of`; u32 and i32 have the same size and alignment, and every bit pattern is
    // valid for both.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut K, v.len()) }
}

/// Whether this layout takes the case: one channel, radius 3 and frames at least a block wide.
pub(super) fn applies(channels: usize, width: usize, radius: usize, block: usize) -> bool {
    channels == 1 && radius == R && width >= block
}

/// Whether both frames allow the cheaper quantisation: every value finite, at most 2^100 in
/// magnitude (so that a scaling by 256 is exact) and all within 2 of each other, so that every
/// squared difference is at most 4 and the definition's clip at 4 never acts. Ped2's frames in
/// [0, 1] do.
fn narrow(last: &[f32], next: &[f32]) -> bool {
    // Eight lanes of plain comparisons, so that it vectorises (a NaN fails every comparison; `finite`
    // catches it and the infinities).
    let (mut lo, mut hi, mut finite) = ([f32::INFINITY; 8], [f32::NEG_INFINITY; 8], [true; 8]);
    let mut see = |c: &[f32; 8]| {
        for j in 0..8 {
            lo[j] = if c[j] < lo[j] { c[j] } else { lo[j] };
            hi[j] = if c[j] > hi[j] { c[j] } else { hi[j] };
            finite[j] &= c[j].abs() < f32::INFINITY;
        }
    };
    for frame in [last, next] {
        let chunks = frame.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            see(c.try_into().expect("chunks of 8"));
        }
        // The tail padded with its own first value (if any).
        if let Some(&first) = tail.first() {
            let mut c = [first; 8];
            c[..tail.len()].copy_from_slice(tail);
            see(&c);
        }
    }
    let (lo, hi) = (lo.iter().fold(f32::INFINITY, |a, &b| a.min(b)), hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)));
    let bound = 2f32.powi(100);
    finite.iter().all(|&f| f) && lo >= -bound && hi <= bound && f64::from(hi) - f64::from(lo) <= 2.0
}

/// One speed map's inputs, already checked by [`super::speed_map_with`].
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    pub last: &'a [f32],
    pub next: &'a [f32],
    pub height: usize,
    pub width: usize,
    pub block: usize,
    /// The 49 shifts of radius 3 in the definition's order.
    pub shifts: &'a [(isize, isize)],
    /// The low bits of a key that hold the shift's index.
    pub bits: u32,
    /// The clipped block extents of the rows.
    pub rows: &'a [(usize, usize)],
    /// The match margin (see [`super::speed_map`]).
    pub margin: f32,
}

/// The speed map: from the best key of every pixel (block sum * 2^bits + the index of its shift in
/// `shifts`, smallest wins) and, with a margin, the block sum of the zero shift.
#[inline(always)]
pub(super) fn speed_map<const AVX2: bool>(job: Job) -> Vec<f32> {
    if narrow(job.last, job.next) {
        speed_map_q::<AVX2, true>(job)
    } else {
        speed_map_q::<AVX2, false>(job)
    }
}

/// [`speed_map`] with the quantisation fixed: NARROW (see [`narrow`]): both frames scaled by 256
/// (exact), so a term is trunc(d * d) with no clip and no scaling, the same integer as the
/// definition's trunc(min(d0 * d0, 4) * 65536) for d = 256 d0; otherwise the definition's expression.
///
/// Row by row: the rows leaving and entering each dy's window of rows update its column sums (the
/// window's rows of terms live in a ring); the last of a row's updates is fused with the block sums
/// along the row and the keys ([`FusedRow`]); rows whose window did not move copy the row above.
#[inline(always)]
fn speed_map_q<const AVX2: bool, const NARROW: bool>(job: Job) -> Vec<f32> {
    let Job { last, next, height, width, block, shifts, bits, rows, margin } = job;
    let margin_needed = margin > 0.0;
    let scale = if NARROW { 256.0 } else { 1.0 };
    // `last` padded by replicating its border: R rows above and below, R columns left and LANES - 1 - R
    // right, so lane j of column x reads the shift dx = j - R (the last lane is read but never wins,
    // see `index`).
    let (pad_h, pad_w) = (height + 2 * R, width + LANES - 1);
    let mut scratch = SCRATCH.with(|s| s.take());
    scratch.padded.resize(pad_h * pad_w, 0.0);
    let padded = &mut scratch.padded[..pad_h * pad_w];
    for (py, dst) in padded.chunks_exact_mut(pad_w).enumerate() {
        let src = &last[py.saturating_sub(R).min(height - 1) * width..][..width];
        dst[..R].fill(src[0] * scale);
        for (d, &v) in dst[R..R + width].iter_mut().zip(src) {
            *d = v * scale;
        }
        dst[R + width..].fill(src[width - 1] * scale);
    }
    let padded = &*padded;
    let next = if NARROW {
        scratch.scaled.clear();
        scratch.scaled.extend(next.iter().map(|&v| v * 256.0));
        &scratch.scaled[..]
    } else {
        next
    };
    // Per dy, each lane's shift index, or all ones in the last lane (OR-ed into the key, a sum scaled
    // by 2^bits whose low bits are 0, so that lane's key is u32::MAX and never wins).
    let index: Vec<K> = (0..N_DY)
        .map(|k| {
            let mut v = [u32::MAX; LANES];
            for (j, lane) in v.iter_mut().enumerate().take(N_DY) {
                let shift = (k as isize - R as isize, j as isize - R as isize);
                *lane = shifts.iter().position(|&s| s == shift).expect("every shift of the radius is listed") as u32;
            }
            v
        })
        .collect();
    let ring_rows = block.min(height);
    // Per column and dy: the running column sums, and the ring of the window's rows of terms (every
    // slot is written before it is read); the dy of a column side by side, so that one pointer
    // serves all dy.
    let colsum = sized(&mut scratch.colsum, N_DY * width);
    colsum.fill(Aligned([0; LANES]));
    let (colsum, ring) = (lanes_of(colsum), lanes_of(sized(&mut scratch.ring, N_DY * ring_rows * width)));
    let (row_keys, sums) = (keys_of(sized(&mut scratch.row_keys, width)), lanes_of(sized(&mut scratch.sums, width)));
    // Every row of both is written below (zero only with a margin).
    let zero_len = if margin_needed { height * width } else { 0 };
    scratch.keys.resize(height * width, 0);
    scratch.zero.resize(zero_len, 0);
    let (keys, zero) = (&mut scratch.keys[..height * width], &mut scratch.zero[..zero_len]);
    // Terms of row r against last's row r + dy are padded row r + k, k = dy + R.
    let lrows = |r: usize| -> [&[f32]; N_DY] { std::array::from_fn(|k| &padded[(r + k) * pad_w..][..pad_w]) };
    let (mut lo, mut hi) = (0usize, 0usize);
    for (y, &(y0, y1)) in rows.iter().enumerate() {
        let here = y * width..(y + 1) * width;
        if y > 0 && rows[y - 1] == (y0, y1) {
            // The same block rows as the row above: the same keys.
            keys.copy_within(here.start - width..here.start, here.start);
            if margin_needed {
                zero.copy_within(here.start - width..here.start, here.start);
            }
            continue;
        }
        // One update at a time (a row leaving, entering, or both in the same ring slot); the last
        // also forms the row's block sums and keys.
        loop {
            let (mut leave, mut enter) = (lo < y0, hi < y1);
            debug_assert!(leave || enter, "a row whose window did not move copies the row above");
            if leave && enter && lo % ring_rows != hi % ring_rows {
                // The window is not full: rows leave first.
                enter = false;
            } else if enter && (y1 - hi) > (y0 - lo) {
                // The window fills (at the top of the frame): rows enter first.
                leave = false;
            }
            let last = (y0 - lo, y1 - hi) == (usize::from(leave), usize::from(enter));
            let pass = FusedRow {
                colsum: &mut *colsum,
                ring: &mut *ring,
                ring_rows,
                leave_slot: (lo % ring_rows) * width * N_DY,
                enter_slot: (hi % ring_rows) * width * N_DY,
                nrow: &next[hi.min(height - 1) * width..][..width],
                lrows: lrows(hi.min(height - 1)),
                index: &index,
                bits,
                block,
            };
            if last {
                row_keys.fill([u32::MAX; LANES]);
            }
            match (leave, enter, last) {
                (true, true, true) => pass.run::<AVX2, NARROW, true, true, true>(row_keys, sums),
                (false, true, true) => pass.run::<AVX2, NARROW, false, true, true>(row_keys, sums),
                (true, false, true) => pass.run::<AVX2, NARROW, true, false, true>(row_keys, sums),
                (true, true, false) => pass.run::<AVX2, NARROW, true, true, false>(row_keys, sums),
                (false, true, false) => pass.run::<AVX2, NARROW, false, true, false>(row_keys, sums),
                _ => pass.run::<AVX2, NARROW, true, false, false>(row_keys, sums),
            }
            lo += usize::from(leave);
            hi += usize::from(enter);
            if last {
                break;
            }
        }
        reduce_row::<AVX2>(row_keys, &mut keys[here.clone()]);
        if margin_needed {
            // The zero shift's index is 0: its key is its sum * 2^bits.
            for (z, s) in zero[here].iter_mut().zip(sums.iter()) {
                *z = (s[R] as u32 >> bits) as i32;
            }
        }
    }
    let map = super::finish_keys(keys, zero, bits, shifts, margin);
    SCRATCH.with(|s| *s.borrow_mut() = scratch);
    map
}

/// out[x] = the smallest of row_keys[x]'s lanes but the last (dx = 4, outside the radius).
#[inline(always)]
fn reduce_row<const AVX2: bool>(row_keys: &[K], out: &mut [u32]) {
    assert_eq!(row_keys.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: AVX2 is only requested from the kernels that run where the CPU has it; the lengths
        // are checked above.
        return unsafe { reduce_row_avx2(row_keys, out) };
    }
    for (o, kx) in out.iter_mut().zip(row_keys) {
        *o = kx[..N_DY].iter().copied().fold(u32::MAX, u32::min);
    }
}

/// [`reduce_row`] in AVX2 intrinsics: the last lane set to all ones, then three halving minima.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn reduce_row_avx2(row_keys: &[K], out: &mut [u32]) {
    use std::arch::x86_64::*;
    let last = _mm256_setr_epi32(0, 0, 0, 0, 0, 0, 0, -1);
    for (o, kx) in out.iter_mut().zip(row_keys) {
        // SAFETY: kx is LANES u32 (unaligned load).
        let v = _mm256_or_si256(unsafe { _mm256_loadu_si256(kx.as_ptr() as *const __m256i) }, last);
        let m = _mm_min_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let m = _mm_min_epu32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
        let m = _mm_min_epu32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
        *o = _mm_cvtsi128_si32(m) as u32;
    }
}

/// One quantised difference term (unscaled: at most 2^18), see [`speed_map_q`].
#[inline(always)]
fn term<const NARROW: bool>(n: f32, l: f32) -> i32 {
    let d = n - l;
    let q = if NARROW { d * d } else { (d * d).min(4.0) * 65536.0 };
    // SAFETY: q is finite and in [0, 2^18]: NARROW frames give d * d <= 4 * 65536 (see `narrow`),
    // otherwise the clip bounds it (NaN clips to 4).
    unsafe { q.to_int_unchecked::<i32>() }
}

/// The last window update of a row for every dy (a row leaving, entering, or both in the same ring
/// slot), fused with the row's block sums and keys: one pass over the columns with the dy inside.
struct FusedRow<'a> {
    /// Column sums, the dy of a column side by side: colsum[x * N_DY + k].
    colsum: &'a mut [V],
    /// The windows' rows of terms: ring[slot + x * N_DY + k].
    ring: &'a mut [V],
    ring_rows: usize,
    /// Offsets in the ring of the leaving and of the entering row (where they do).
    leave_slot: usize,
    enter_slot: usize,
    /// The entering row of `next` (where one enters).
    nrow: &'a [f32],
    /// Per dy, the padded row of `last` it is matched against.
    lrows: [&'a [f32]; N_DY],
    /// Per dy, each lane's shift index (all ones in the last lane).
    index: &'a [K],
    bits: u32,
    block: usize,
}

impl FusedRow<'_> {
    /// The update; with KEYS, row_keys[x] = the lane-wise smallest key over the dy (row_keys comes
    /// filled with u32::MAX) and sums[x] = the zero dy's block sums.
    #[inline(always)]
    fn run<const AVX2: bool, const NARROW: bool, const LEAVE: bool, const ENTER: bool, const KEYS: bool>(mut self, row_keys: &mut [K], sums: &mut [V]) {
        let (width, block) = (self.nrow.len(), self.block);
        let slots = self.ring_rows * width * N_DY;
        assert!(
            (1..=width).contains(&block)
                && self.colsum.len() == N_DY * width
                && self.ring.len() == slots
                && self.leave_slot + width * N_DY <= slots
                && self.enter_slot + width * N_DY <= slots
                && self.lrows.iter().all(|l| l.len() >= width + LANES - 1)
                && self.index.len() == N_DY
                && row_keys.len() == width
                && sums.len() == width
        );
        // SAFETY (every build): the lengths are checked above; AVX2 is only requested from the
        // kernels that run where the CPU has it.
        #[cfg(target_arch = "x86_64")]
        if AVX2 {
            unsafe { self.pass::<Avx2, NARROW, LEAVE, ENTER, KEYS>(row_keys, sums) };
        } else {
            unsafe { self.pass::<Portable, NARROW, LEAVE, ENTER, KEYS>(row_keys, sums) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        unsafe {
            self.pass::<Portable, NARROW, LEAVE, ENTER, KEYS>(row_keys, sums)
        };
        if !KEYS {
            return;
        }
        // Left of the interior every block is the first one; right of it blocks shrink to the edge.
        let (half, starts) = (block / 2, width - block + 1);
        for x in 0..half {
            (row_keys[x], sums[x]) = (row_keys[half], sums[half]);
        }
        // Pixel x >= half + starts sums columns x - half .. width: one running sum from the right edge.
        for k in 0..N_DY {
            let mut sum = [0i32; LANES];
            for c in (starts..width).rev() {
                sum = add(sum, self.colsum[c * N_DY + k]);
                let x = c + half;
                if x >= width {
                    continue;
                }
                for j in 0..LANES {
                    row_keys[x][j] = row_keys[x][j].min((sum[j] as u32).wrapping_add(self.index[k][j]));
                }
                if k == R {
                    sums[x] = sum;
                }
            }
        }
    }

    /// The interior of [`FusedRow::run`] in one build's vector operations: per column i and dy, the
    /// new column sum c = c - leaving term + entering term, the running block sum b += c - c[i -
    /// block], and once i + 1 >= block, the key of the pixel whose block ends at i.
    ///
    /// # Safety
    /// The lengths checked by `run`; the CPU runs `O`'s instructions.
    #[inline(always)]
    unsafe fn pass<O: Ops, const NARROW: bool, const LEAVE: bool, const ENTER: bool, const KEYS: bool>(&mut self, row_keys: &mut [K], sums: &mut [V]) {
        let (width, block) = (self.nrow.len(), self.block);
        let half = block / 2;
        let colsum = self.colsum.as_mut_ptr();
        let ring = self.ring.as_mut_ptr();
        let lrows: [*const f32; N_DY] = std::array::from_fn(|k| self.lrows[k].as_ptr());
        // SAFETY: `index` holds N_DY vectors; i < width; colsum holds width * N_DY vectors, ring
        // ring_rows slot rows of as many, both slots inside, lrows[k] at least width + LANES - 1
        // values; the key's pixel i + 1 - block + half < width since half < block.
        unsafe {
            // The running block sums start at the shifts' indices: the terms are scaled by 2^bits, so
            // b is the key, sum * 2^bits + index, in every lane but the last (masked by the caller).
            let mut b: [O::I; N_DY] = std::array::from_fn(|k| O::load(&self.index[k] as *const K as *const V));
            for i in 0..width {
                let n = *self.nrow.get_unchecked(i);
                let mut kmin = O::ones();
                for k in 0..N_DY {
                    let cp = colsum.add(i * N_DY + k);
                    let mut c = O::load(cp);
                    if LEAVE {
                        c = O::sub(c, O::load(ring.add(self.leave_slot + i * N_DY + k)));
                    }
                    if ENTER {
                        let q = O::term::<NARROW>(n, lrows[k].add(i), self.bits);
                        c = O::add(c, q);
                        O::store(ring.add(self.enter_slot + i * N_DY + k), q);
                    }
                    O::store(cp, c);
                    if !KEYS {
                        continue;
                    }
                    b[k] = O::add(b[k], c);
                    if i >= block {
                        b[k] = O::sub(b[k], O::load(colsum.add((i - block) * N_DY + k)));
                    }
                    if i + 1 >= block {
                        kmin = O::min_u(kmin, b[k]);
                    }
                }
                if KEYS && i + 1 >= block {
                    let x = i + 1 - block + half;
                    O::store(row_keys.as_mut_ptr().add(x) as *mut V, kmin);
                    O::store(sums.as_mut_ptr().add(x), b[R]);
                }
            }
        }
    }
}

/// The vector operations of [`FusedRow::pass`] on eight 32-bit lanes, for one build.
trait Ops {
    type I: Copy;
    /// The eight terms of next value `n` against l[0..8] (see [`term`]), times 2^bits.
    unsafe fn term<const NARROW: bool>(n: f32, l: *const f32, bits: u32) -> Self::I;
    unsafe fn load(p: *const V) -> Self::I;
    unsafe fn store(p: *mut V, v: Self::I);
    unsafe fn add(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn sub(a: Self::I, b: Self::I) -> Self::I;
    /// All bits set.
    unsafe fn ones() -> Self::I;
    /// The lane-wise unsigned minimum.
    unsafe fn min_u(a: Self::I, b: Self::I) -> Self::I;
}

/// Plain arrays (what aarch64 runs; compilers vectorise the lane loops).
struct Portable;

impl Ops for Portable {
    type I = V;
    #[inline(always)]
    unsafe fn term<const NARROW: bool>(n: f32, l: *const f32, bits: u32) -> V {
        let mut q = [0i32; LANES];
        for (j, q) in q.iter_mut().enumerate() {
            // SAFETY: the caller passes LANES readable values.
            *q = term::<NARROW>(n, unsafe { *l.add(j) }) << bits;
        }
        q
    }
    #[inline(always)]
    unsafe fn load(p: *const V) -> V {
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(p: *mut V, v: V) {
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn add(a: V, b: V) -> V {
        add(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: V, b: V) -> V {
        sub(a, b)
    }
    #[inline(always)]
    unsafe fn ones() -> V {
        [-1; LANES]
    }
    #[inline(always)]
    unsafe fn min_u(a: V, b: V) -> V {
        let mut m = [0i32; LANES];
        for j in 0..LANES {
            m[j] = (a[j] as u32).min(b[j] as u32) as i32;
        }
        m
    }
}

/// AVX2 intrinsics, inlined into the kernels compiled for AVX2.
#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Ops for Avx2 {
    type I = std::arch::x86_64::__m256i;
    #[inline(always)]
    unsafe fn term<const NARROW: bool>(n: f32, l: *const f32, bits: u32) -> Self::I {
        use std::arch::x86_64::*;
        // SAFETY: the caller passes LANES readable values and runs where the CPU has AVX2.
        unsafe {
            let d = _mm256_sub_ps(_mm256_set1_ps(n), _mm256_loadu_ps(l));
            let mut q = _mm256_mul_ps(d, d);
            if !NARROW {
                // min_ps returns its second operand where the first is NaN: NaN clips to 4, as
                // f32::min does.
                q = _mm256_mul_ps(_mm256_min_ps(q, _mm256_set1_ps(4.0)), _mm256_set1_ps(65536.0));
            }
            _mm256_sll_epi32(_mm256_cvttps_epi32(q), _mm_cvtsi32_si128(bits as i32))
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const V) -> Self::I {
        unsafe { std::arch::x86_64::_mm256_loadu_si256(p as *const _) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut V, v: Self::I) {
        unsafe { std::arch::x86_64::_mm256_storeu_si256(p as *mut _, v) }
    }
    #[inline(always)]
    unsafe fn add(a: Self::I, b: Self::I) -> Self::I {
        unsafe { std::arch::x86_64::_mm256_add_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: Self::I, b: Self::I) -> Self::I {
        unsafe { std::arch::x86_64::_mm256_sub_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn ones() -> Self::I {
        unsafe { std::arch::x86_64::_mm256_set1_epi32(-1) }
    }
    #[inline(always)]
    unsafe fn min_u(a: Self::I, b: Self::I) -> Self::I {
        unsafe { std::arch::x86_64::_mm256_min_epu32(a, b) }
    }
}

#[inline(always)]
fn add(a: V, b: V) -> V {
    let mut c = [0i32; LANES];
    for j in 0..LANES {
        c[j] = a[j].wrapping_add(b[j]);
    }
    c
}

#[inline(always)]
fn sub(a: V, b: V) -> V {
    let mut c = [0i32; LANES];
    for j in 0..LANES {
        c[j] = a[j].wrapping_sub(b[j]);
    }
    c
}
