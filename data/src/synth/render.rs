//! The walkway scene's renderer: walkers, the intruder, the background and the sensor noise.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{SynthConfig, BACKGROUND_STREAM, WALKER};
use crate::dataset::WINDOW;

/// The two kinds of intruder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum IntruderKind {
    /// A 7x12 (HxW) block along the walkway at 3-4 px a frame.
    Cart,
    /// A 6x5 block crossing diagonally at 3 px a frame across, 0.5-1 px down or up.
    Cyclist,
}

impl IntruderKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            IntruderKind::Cart => "cart",
            IntruderKind::Cyclist => "cyclist",
        }
    }
}

/// One rendered clip: 8-bit frames (row-major) and a label per frame.
pub(super) struct RenderedClip {
    pub(super) frames: Vec<Vec<u8>>,
    pub(super) labels: Vec<u8>,
    /// The intruder's box in each frame where it is visible.
    pub(super) boxes: Vec<Option<[u32; 4]>>,
}

/// The fixed parts of the scene.
pub(super) struct Scene {
    pub(super) cfg: SynthConfig,
    pub(super) h: usize,
    pub(super) w: usize,
    /// Walkway rows `band.0..band.1`.
    pub(super) band: (usize, usize),
    /// Background gray levels, row-major.
    pub(super) background: Vec<f32>,
}

/// A uniform draw in `[0, 1)`.
pub(super) fn unit(rng: &mut ChaCha8Rng) -> f32 {
    rng.random::<f32>()
}

/// A uniform draw in `[lo, hi)`.
pub(super) fn between(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(rng)
}

/// Approximately standard-normal noise: the centred sum of four uniforms, scaled to unit variance.
pub(super) fn noise(rng: &mut ChaCha8Rng) -> f32 {
    const SQRT_3: f32 = 1.732_050_8;
    (unit(rng) + unit(rng) + unit(rng) + unit(rng) - 2.0) * SQRT_3
}

/// A moving rectangle: top-left corner, size, gray level.
#[derive(Clone, Debug)]
pub(super) struct Blob {
    pub(super) x: f32,
    pub(super) y: f32,
    pub(super) h: f32,
    pub(super) w: f32,
    pub(super) shade: f32,
}

/// A walker: a blob, its velocity, and a pause counter while off screen.
pub(super) struct Walker {
    pub(super) blob: Blob,
    pub(super) vx: f32,
    /// Frames left before re-entering; `None` while on screen.
    pub(super) away: Option<u32>,
}

/// An intruder's straight path, on a half-pixel grid so that it is never a sliver when visible.
pub(super) struct Intruder {
    pub(super) blob: Blob,
    pub(super) vx: f32,
    pub(super) vy: f32,
    pub(super) start: usize,
}

impl Scene {
    pub(super) fn new(cfg: &SynthConfig) -> Self {
        let (h, w) = (cfg.height, cfg.width);
        let band = (h * 3 / 10, h * 8 / 10);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(BACKGROUND_STREAM);
        // Paving tiles of random size along the walkway (each with its own shade), fine grain noise
        // everywhere, rougher darker grass above and below, a bright kerb on both sides.
        let mut tile_edges = Vec::new();
        let mut x = 0usize;
        while x < w {
            tile_edges.push(x);
            x += 5 + (rng.random::<u32>() % 4) as usize;
        }
        let tile_shade: Vec<f32> = tile_edges.iter().map(|_| between(&mut rng, -6.0, 6.0)).collect();
        let mut background = vec![0.0f32; h * w];
        for y in 0..h {
            for x in 0..w {
                let grain = noise(&mut rng);
                let v = if y == band.0 || y + 1 == band.1 {
                    205.0 + 2.0 * grain
                } else if (band.0..band.1).contains(&y) {
                    let tile = tile_edges.iter().rposition(|&e| e <= x).unwrap_or(0);
                    let seam = if tile_edges[tile] == x || (y - band.0) % 6 == 0 { -14.0 } else { 0.0 };
                    170.0 + tile_shade[tile] + seam + 3.0 * grain
                } else {
                    // Grass: vertical streaks plus grain.
                    let streak = if (x * 7 + y / 3) % 5 == 0 { 10.0 } else { 0.0 };
                    95.0 + streak + 8.0 * grain
                };
                background[y * w + x] = v;
            }
        }
        Self { cfg: cfg.clone(), h, w, band, background }
    }

    /// A walker entering at an edge (or, at the start of a clip, anywhere along the walkway).
    pub(super) fn spawn(&self, rng: &mut ChaCha8Rng, anywhere: bool) -> Walker {
        let (wh, ww) = WALKER;
        let right = rng.random::<bool>();
        let speed = between(rng, 0.5, 1.0);
        let x = if anywhere {
            between(rng, 0.0, self.w as f32 - ww)
        } else if right {
            -ww
        } else {
            self.w as f32
        };
        let lanes = (self.band.1 - self.band.0) as f32 - wh - 2.0;
        let y = self.band.0 as f32 + 1.0 + between(rng, 0.0, lanes.max(0.0));
        Walker { blob: Blob { x, y, h: wh, w: ww, shade: between(rng, 35.0, 75.0) }, vx: if right { speed } else { -speed }, away: None }
    }

    /// Moves a walker one frame: along the walkway with slight jitter; off screen it pauses, then
    /// re-enters at an edge.
    pub(super) fn step(&self, rng: &mut ChaCha8Rng, walker: &mut Walker) {
        if let Some(left) = walker.away {
            if left == 0 {
                *walker = self.spawn(rng, false);
            } else {
                walker.away = Some(left - 1);
            }
            return;
        }
        let b = &mut walker.blob;
        b.x += walker.vx + between(rng, -0.1, 0.1);
        let top = self.band.0 as f32 + 1.0;
        let bottom = self.band.1 as f32 - 1.0 - b.h;
        b.y = (b.y + between(rng, -0.15, 0.15)).clamp(top, bottom.max(top));
        let gone = (walker.vx > 0.0 && b.x >= self.w as f32) || (walker.vx < 0.0 && b.x + b.w <= 0.0);
        if gone {
            walker.away = Some(rng.random::<u32>() % 16);
        }
    }

    /// The intruder of a test clip: enters at an edge, on screen from its first frame.
    pub(super) fn intruder(&self, rng: &mut ChaCha8Rng, kind: IntruderKind) -> Intruder {
        let n = self.cfg.frames_per_clip;
        let lo = WINDOW.max(n / 5);
        let hi = lo.max(n / 3);
        let start = lo + (rng.random::<u32>() as usize) % (hi - lo + 1);
        let right = rng.random::<bool>();
        let (bh, bw, speed, vy, shade) = match kind {
            IntruderKind::Cart => {
                let speed = [3.0, 3.5, 4.0][(rng.random::<u32>() % 3) as usize];
                (7.0, 12.0, speed, 0.0, 15.0)
            }
            IntruderKind::Cyclist => {
                let vy = [0.5, 1.0][(rng.random::<u32>() % 2) as usize];
                (6.0, 5.0, 3.0, vy, 40.0)
            }
        };
        let room = (self.band.1 - self.band.0).saturating_sub(bh as usize).max(1);
        let mut y = (self.band.0 + (rng.random::<u32>() as usize) % room) as f32;
        let mut vy = vy;
        if kind == IntruderKind::Cyclist {
            // Head for the far side of the picture from where it enters.
            if y + bh / 2.0 > self.h as f32 / 2.0 {
                vy = -vy;
            }
            y = y.min(self.h as f32 - bh);
        }
        let (x, vx) = if right { (-bw + speed, speed) } else { (self.w as f32 - speed, -speed) };
        Intruder { blob: Blob { x, y, h: bh, w: bw, shade }, vx, vy, start }
    }

    /// Whether any part of a blob lies inside the picture.
    pub(super) fn visible(&self, b: &Blob) -> bool {
        b.x < self.w as f32 && b.x + b.w > 0.0 && b.y < self.h as f32 && b.y + b.h > 0.0
    }

    /// Paints a blob over `canvas` with area-coverage anti-aliasing.
    pub(super) fn paint(&self, canvas: &mut [f32], b: &Blob) {
        if !self.visible(b) {
            return;
        }
        let x0 = b.x.max(0.0);
        let x1 = (b.x + b.w).min(self.w as f32);
        let y0 = b.y.max(0.0);
        let y1 = (b.y + b.h).min(self.h as f32);
        for py in (y0.floor() as usize)..(y1.ceil() as usize).min(self.h) {
            let cy = (y1.min(py as f32 + 1.0) - y0.max(py as f32)).max(0.0);
            for px in (x0.floor() as usize)..(x1.ceil() as usize).min(self.w) {
                let cx = (x1.min(px as f32 + 1.0) - x0.max(px as f32)).max(0.0);
                let c = cx * cy;
                let v = &mut canvas[py * self.w + px];
                *v = *v * (1.0 - c) + b.shade * c;
            }
        }
    }

    /// Renders one clip from its own random stream.
    pub(super) fn render_clip(&self, stream: u64, intruder: Option<IntruderKind>) -> RenderedClip {
        let n = self.cfg.frames_per_clip;
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        rng.set_stream(stream);
        let mut walkers: Vec<Walker> = (0..self.cfg.walkers).map(|_| self.spawn(&mut rng, true)).collect();
        let intruder = intruder.map(|k| self.intruder(&mut rng, k));
        let mut frames = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        let mut boxes = Vec::with_capacity(n);
        for t in 0..n {
            let mut canvas = self.background.clone();
            for walker in walkers.iter().filter(|w| w.away.is_none()) {
                self.paint(&mut canvas, &walker.blob);
            }
            let mut label = 0u8;
            let mut bbox = None;
            if let Some(i) = intruder.as_ref().filter(|i| t >= i.start) {
                let dt = (t - i.start) as f32;
                let blob = Blob { x: i.blob.x + i.vx * dt, y: i.blob.y + i.vy * dt, ..i.blob.clone() };
                if self.visible(&blob) {
                    label = 1;
                    self.paint(&mut canvas, &blob);
                    let (x0, y0) = (blob.x.floor().max(0.0) as u32, blob.y.floor().max(0.0) as u32);
                    let (x1, y1) = ((blob.x + blob.w).ceil().min(self.w as f32) as u32, (blob.y + blob.h).ceil().min(self.h as f32) as u32);
                    bbox = Some([x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)]);
                }
            }
            boxes.push(bbox);
            let sd = self.cfg.noise_std;
            let pixels = canvas.iter().map(|&v| (v + sd * noise(&mut rng)).round().clamp(0.0, 255.0) as u8).collect();
            frames.push(pixels);
            labels.push(label);
            for walker in &mut walkers {
                self.step(&mut rng, walker);
            }
        }
        RenderedClip { frames, labels, boxes }
    }
}
