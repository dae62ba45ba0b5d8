//! Camera pixels -> the model's `frame` input, exactly as the trainer's data loader does it: gray (luma,
//! Rec. 709 weights as `image` computes them) or RGB, resized with a triangle filter in f32 (no 8-bit
//! rounding) when the size differs, mapped [0, 1] -> [-1, 1] (clamped), CHW.
//!
//! The trainer (`sfn-trainer::data`) and the edge runtime both call [`to_model_input`], so a frame
//! replayed on the host and the same frame captured on the device give the same tensor.

use image::imageops::FilterType;
use image::DynamicImage;

/// Model input of `img` for a `channels` x `height` x `width` frame (`channels` 1 or 3).
pub fn to_model_input(img: &DynamicImage, channels: usize, height: usize, width: usize) -> Vec<f32> {
    let (w, h) = (width as u32, height as u32);
    let same = img.width() == w && img.height() == h;
    if channels == 1 {
        let mut g = img.to_luma32f();
        if !same {
            g = image::imageops::resize(&g, w, h, FilterType::Triangle);
        }
        g.into_raw().into_iter().map(to_unit_range).collect()
    } else {
        let mut rgb = img.to_rgb32f();
        if !same {
            rgb = image::imageops::resize(&rgb, w, h, FilterType::Triangle);
        }
        let hwc = rgb.into_raw();
        let plane = height * width;
        let mut chw = vec![0.0f32; 3 * plane];
        for (p, px) in hwc.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                chw[c * plane + p] = to_unit_range(v);
            }
        }
        chw
    }
}

/// `[0, 1]` -> `[-1, 1]` (clamped: the triangle filter cannot overshoot, but be safe).
pub fn to_unit_range(v: f32) -> f32 {
    (2.0 * v - 1.0).clamp(-1.0, 1.0)
}
