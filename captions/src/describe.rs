//! A caption provider that runs here with no model: it measures the moving regions of the 4-frame clip
//! and renders them as sentences.
//!
//! Measurement (on the frames as given, gray = channel mean):
//! 1. motion energy M(p) = max_k |I_k(p) - I_{k-1}(p)| over the clip's 3 frame differences;
//!    moving pixels: M > `diff_threshold`, dilated twice (3x3) so the parts of one body join;
//! 2. regions = 4-connected components of that mask, smaller than `min_area` dropped;
//! 3. each region's velocity by block matching: the moving pixels of I_3 inside the region's box against
//!    I_0 shifted by every (dx, dy) within 3 x `search` pixels; the best shift / 3 is px/frame (a third of
//!    a pixel resolution: walkers move about a pixel a frame at 120x180);
//! 4. the `max_regions` fastest of the largest regions are described, fastest first.
//!
//! Sentences: size (small / person-sized / large, and upright / wide), speed (still, slowly, walking
//! pace, fast, very fast — in frame widths per frame, so resolution-independent), direction (left, right,
//! away from / toward the camera) and position (top / middle / bottom, left / center / right).
//!
//! What it can see: how many things move, how big, how fast, which way, where. What it cannot: what they
//! are (a cyclist and a fast runner read the same), anything that does not move (a parked car, a person
//! standing still), appearance (clothes, carried objects), interactions. On Ped2 most anomalies (bikes,
//! skateboards, carts) differ from walkers in speed and size, which is exactly what it reports.

use crate::{check_clip, CaptionError, CaptionProvider, Clip};

/// Thresholds of the describer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DescriberConfig {
    /// A pixel moves if some frame difference exceeds this (pixel values in [-1, 1]; 0.08 ≈ 10 gray levels).
    pub diff_threshold: f32,
    /// Smallest region kept, as a fraction of the frame area.
    pub min_area: f32,
    /// Block-matching search radius per frame, in pixels.
    pub search: usize,
    /// Regions described at most (the fastest of the largest `2 * max_regions`).
    pub max_regions: usize,
    /// A region's shift counts only if it lowers the matching cost by this fraction against no shift
    /// (0 = off; on Ped2 0.3 removed as much real motion as noise).
    #[serde(default)]
    pub min_match_gain: f32,
}

impl Default for DescriberConfig {
    fn default() -> Self {
        DescriberConfig { diff_threshold: 0.08, min_area: 0.0008, search: 6, max_regions: 3, min_match_gain: 0.0 }
    }
}

/// One moving region of a clip.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// Area as a fraction of the frame.
    pub area: f32,
    /// Box centre, as fractions of width and height (0 = left / top).
    pub cx: f32,
    pub cy: f32,
    /// Box size in pixels.
    pub w: usize,
    pub h: usize,
    /// Velocity in frame widths per frame (x right, y down).
    pub vx: f32,
    pub vy: f32,
    /// Width of the frame in pixels (to turn velocities back into pixels).
    pub frame_width: usize,
}

impl Region {
    /// Speed in frame widths per frame.
    pub fn speed(&self) -> f32 {
        self.vx.hypot(self.vy)
    }
}

/// The motion describer (provider (c) of the semantic branch).
#[derive(Clone, Debug, Default)]
pub struct MotionDescriber {
    pub cfg: DescriberConfig,
}

fn gray(frame: &[f32], c: usize, plane: usize) -> Vec<f32> {
    if c == 1 {
        return frame.to_vec();
    }
    (0..plane).map(|p| (0..c).map(|k| frame[k * plane + p]).sum::<f32>() / c as f32).collect()
}

fn dilate(mask: &[bool], h: usize, w: usize) -> Vec<bool> {
    let mut out = vec![false; mask.len()];
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
                for yy in y.saturating_sub(1)..(y + 2).min(h) {
                    for xx in x.saturating_sub(1)..(x + 2).min(w) {
                        out[yy * w + xx] = true;
                    }
                }
            }
        }
    }
    out
}

impl MotionDescriber {
    pub fn new(cfg: DescriberConfig) -> Self {
        MotionDescriber { cfg }
    }

    /// The moving regions of a clip, fastest first.
    pub fn measure(&self, clip: &Clip) -> Result<Vec<Region>, CaptionError> {
        check_clip(clip)?;
        let (h, w, c) = (clip.height, clip.width, clip.channels);
        let plane = h * w;
        let g: Vec<Vec<f32>> = clip.frames.iter().map(|f| gray(f, c, plane)).collect();
        if let Some(k) = g.iter().position(|f| f.iter().any(|v| !v.is_finite())) {
            return Err(CaptionError::BadClip { clip: clip.clip.into(), frame: clip.frame, reason: format!("frame {k} of the clip has a non-finite value") });
        }
        let moving: Vec<bool> = (0..plane).map(|p| (1..4).map(|k| (g[k][p] - g[k - 1][p]).abs()).fold(0f32, f32::max) > self.cfg.diff_threshold).collect();
        let mask = dilate(&dilate(&moving, h, w), h, w);
        let min_px = ((self.cfg.min_area * plane as f32).ceil() as usize).max(1);
        let mut label = vec![usize::MAX; plane];
        let mut regions = Vec::new();
        let mut stack = Vec::new();
        for start in 0..plane {
            if !mask[start] || label[start] != usize::MAX {
                continue;
            }
            let id = regions.len();
            label[start] = id;
            stack.push(start);
            let (mut n, mut x0, mut x1, mut y0, mut y1) = (0usize, w, 0, h, 0);
            while let Some(p) = stack.pop() {
                n += 1;
                let (y, x) = (p / w, p % w);
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
                let mut push = |q: usize| {
                    if mask[q] && label[q] == usize::MAX {
                        label[q] = id;
                        stack.push(q);
                    }
                };
                if x > 0 {
                    push(p - 1);
                }
                if x + 1 < w {
                    push(p + 1);
                }
                if y > 0 {
                    push(p - w);
                }
                if y + 1 < h {
                    push(p + w);
                }
            }
            regions.push((id, n, x0, x1, y0, y1));
        }
        regions.retain(|r| r.1 >= min_px);
        regions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        regions.truncate(2 * self.cfg.max_regions);
        let s = (3 * self.cfg.search) as isize;
        Ok(regions
            .into_iter()
            .map(|(id, n, x0, x1, y0, y1)| {
                // Block matching of the region's moving pixels in I_3 against I_0 shifted by (dx, dy).
                let pix: Vec<(usize, usize)> = (y0..=y1).flat_map(|y| (x0..=x1).map(move |x| (y, x))).filter(|&(y, x)| label[y * w + x] == id && moving[y * w + x]).collect();
                let (mut best, mut bdx, mut bdy, mut still) = (f32::INFINITY, 0isize, 0isize, f32::INFINITY);
                if !pix.is_empty() {
                    for dy in -s..=s {
                        for dx in -s..=s {
                            let (mut sum, mut cnt) = (0f32, 0usize);
                            for &(y, x) in &pix {
                                let (sy, sx) = (y as isize - dy, x as isize - dx);
                                if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                                    sum += (g[3][y * w + x] - g[0][sy as usize * w + sx as usize]).abs();
                                    cnt += 1;
                                }
                            }
                            if cnt * 2 >= pix.len() {
                                // Ties go to the smaller shift.
                                let cost = sum / cnt as f32 + 1e-6 * (dx * dx + dy * dy) as f32;
                                if dx == 0 && dy == 0 {
                                    still = cost;
                                }
                                if cost < best {
                                    (best, bdx, bdy) = (cost, dx, dy);
                                }
                            }
                        }
                    }
                }
                // A shift that explains the region hardly better than no shift is noise, not motion.
                if self.cfg.min_match_gain > 0.0 && best >= still * (1.0 - self.cfg.min_match_gain) {
                    (bdx, bdy) = (0, 0);
                }
                Region {
                    area: n as f32 / plane as f32,
                    cx: (x0 + x1 + 1) as f32 / 2.0 / w as f32,
                    cy: (y0 + y1 + 1) as f32 / 2.0 / h as f32,
                    w: x1 - x0 + 1,
                    h: y1 - y0 + 1,
                    vx: bdx as f32 / 3.0 / w as f32,
                    vy: bdy as f32 / 3.0 / w as f32,
                    frame_width: w,
                }
            })
            .collect::<Vec<Region>>())
        .map(|mut r| {
            // The most salient motion first: fastest, then largest.
            r.sort_by(|a, b| b.speed().total_cmp(&a.speed()).then(b.area.total_cmp(&a.area)));
            r.truncate(self.cfg.max_regions);
            r
        })
    }

    /// Sentences for measured regions.
    pub fn render(regions: &[Region]) -> String {
        const COUNT: [&str; 7] = ["No", "One", "Two", "Three", "Four", "Five", "Six"];
        if regions.is_empty() {
            return "Nothing moves in the scene.".into();
        }
        let n = COUNT.get(regions.len()).copied().unwrap_or("Many");
        let mut out = format!("{n} moving {}.", if regions.len() == 1 { "region" } else { "regions" });
        for r in regions {
            let size = if r.area < 0.004 {
                "A small"
            } else if r.area < 0.025 {
                "A person-sized"
            } else {
                "A large"
            };
            // The box spans the region's path over the clip (3 frame steps) and the 2-pixel dilation:
            // take those out to judge the shape of the thing itself.
            let ow = (r.w as f32 - 4.0 - 3.0 * (r.vx * r.frame_width as f32).abs()).max(1.0);
            let oh = (r.h as f32 - 4.0 - 3.0 * (r.vy * r.frame_width as f32).abs()).max(1.0);
            let shape = if oh > 1.5 * ow {
                " upright"
            } else if ow > 1.5 * oh {
                " wide"
            } else {
                ""
            };
            let v = r.speed();
            // Bins in frame widths per frame; at 180 px wide: 0.27, 0.54, 1, 2 px/frame.
            let speed = if v < 0.0015 {
                "standing almost still"
            } else if v < 0.003 {
                "moving slowly"
            } else if v < 0.0055 {
                "moving at walking pace"
            } else if v < 0.011 {
                "moving fast"
            } else {
                "moving very fast"
            };
            let dir = if v < 0.0015 {
                ""
            } else if r.vx.abs() >= r.vy.abs() {
                if r.vx < 0.0 {
                    " to the left"
                } else {
                    " to the right"
                }
            } else if r.vy < 0.0 {
                " away from the camera"
            } else {
                " toward the camera"
            };
            let row = if r.cy < 1.0 / 3.0 {
                "near the top"
            } else if r.cy < 2.0 / 3.0 {
                "in the middle"
            } else {
                "near the bottom"
            };
            let col = if r.cx < 1.0 / 3.0 {
                "on the left"
            } else if r.cx < 2.0 / 3.0 {
                "in the center"
            } else {
                "on the right"
            };
            out.push_str(&format!(" {size}{shape} region {speed}{dir}, {row} {col}."));
        }
        out
    }
}

impl CaptionProvider for MotionDescriber {
    fn name(&self) -> String {
        format!("motion-describer v1 (threshold {}, min area {}, search {} px)", self.cfg.diff_threshold, self.cfg.min_area, self.cfg.search)
    }

    fn caption(&mut self, clip: &Clip) -> Result<String, CaptionError> {
        Ok(Self::render(&self.measure(clip)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 60x90 gray clip (background -0.5) with a bright `bw` x `bh` box at x = x0 + k * vx in frame k.
    fn clip_with_box(x0: f32, y0: usize, bw: usize, bh: usize, vx: f32) -> Vec<Vec<f32>> {
        let (h, w) = (60, 90);
        (0..4)
            .map(|k| {
                let mut f = vec![-0.5f32; h * w];
                let x = (x0 + k as f32 * vx).round() as usize;
                for y in y0..y0 + bh {
                    for xx in x..x + bw {
                        // A textured box so block matching has something to lock on.
                        let xr = xx - x; // texture moves with the box; not periodic, so one shift matches
                        f[y * w + xx] = 0.3 + 0.5 * ((((y * 131 + xr * 71) ^ (y * xr)) % 17) as f32 / 17.0);
                    }
                }
                f
            })
            .collect()
    }

    fn clip<'a>(frames: &'a [Vec<f32>]) -> Clip<'a> {
        Clip { clip: "t", frame: 3, frames: [&frames[0], &frames[1], &frames[2], &frames[3]], channels: 1, height: 60, width: 90 }
    }

    #[test]
    fn measures_speed_direction_and_position() {
        let d = MotionDescriber::default();
        // An upright 6x14 box moving 2 px/frame to the right in the lower left.
        let f = clip_with_box(10.0, 40, 6, 14, 2.0);
        let r = d.measure(&clip(&f)).unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        assert!((r[0].vx * 90.0 - 2.0).abs() < 0.01 && r[0].vy.abs() < 1e-6, "{r:?}");
        let text = MotionDescriber::render(&r);
        assert!(text.starts_with("One moving region."), "{text}");
        assert!(text.contains("upright") && text.contains("to the right") && text.contains("near the bottom on the left"), "{text}");
        // The same box moving 5 px/frame to the left reads faster.
        let f = clip_with_box(60.0, 40, 6, 14, -5.0);
        let text = d.clone().caption(&clip(&f)).unwrap();
        assert!(text.contains("very fast to the left"), "{text}");
        // Nothing moves.
        let still = vec![vec![0.1f32; 60 * 90]; 4];
        assert_eq!(MotionDescriber::default().caption(&clip(&still)).unwrap(), "Nothing moves in the scene.");
    }

    #[test]
    fn bad_clip_is_named() {
        let f = clip_with_box(10.0, 10, 5, 5, 1.0);
        let mut c = clip(&f);
        c.height = 61;
        let err = MotionDescriber::default().caption(&c).unwrap_err().to_string();
        assert!(err.contains("clip t frame 3"), "{err}");
        let mut nan = f.clone();
        nan[2][17] = f32::NAN;
        let err = MotionDescriber::default().caption(&clip(&nan)).unwrap_err().to_string();
        assert!(err.contains("non-finite"), "{err}");
    }
}
