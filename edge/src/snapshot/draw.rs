//! What a snapshot shows: the source frame at its own resolution, the anomalous region boxed, a
//! caption band across the top (device, time, score, cue), JPEG-encoded; and a smaller encode for
//! links with a size limit.

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use sfn_scoring::Region;

const BOX: Rgb<u8> = Rgb([255, 40, 40]);
const BAND: Rgb<u8> = Rgb([0, 0, 0]);
const TEXT: Rgb<u8> = Rgb([255, 255, 255]);

/// The frame with `region` boxed and `caption` written in a band along the top edge (the picture
/// keeps its size; the band covers its top rows).
pub fn annotate(frame: &image::DynamicImage, region: Option<Region>, caption: &str) -> RgbImage {
    let mut img = frame.to_rgb8();
    let (w, h) = img.dimensions();
    let scale = (w / 360).max(1);
    if let Some(r) = region {
        rectangle(&mut img, r, (w / 240).max(2));
    }
    let band = (GLYPH_H + 4) * scale;
    fill(&mut img, 0, 0, w, band.min(h), BAND);
    text(&mut img, 2 * scale, 2 * scale, scale, caption, TEXT);
    img
}

/// JPEG bytes of `img` at `quality` (1..=100).
pub fn jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)).encode_image(img).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The largest JPEG of `img` that fits in `max_bytes`: the given quality, then 70, 50 and 30, then
/// the same at half the size, and so on down to 32 pixels wide. None when nothing fits. `first`:
/// the full-size encoding at `quality` when the caller has it already (not encoded again).
pub fn jpeg_within(img: &RgbImage, quality: u8, max_bytes: usize, mut first: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, String> {
    let mut img = std::borrow::Cow::Borrowed(img);
    loop {
        for q in [quality, 70, 50, 30] {
            if q > quality {
                continue;
            }
            let b = match first.take() {
                Some(b) => b,
                None => jpeg(&img, q)?,
            };
            if b.len() <= max_bytes {
                return Ok(Some(b));
            }
        }
        let (w, h) = img.dimensions();
        if w / 2 < 32 || h / 2 < 2 {
            return Ok(None);
        }
        img = std::borrow::Cow::Owned(image::imageops::resize(&*img, w / 2, h / 2, image::imageops::FilterType::Triangle));
    }
}

/// A `w` x `h` rectangle of colour `c` at (`x`, `y`), clipped to the picture.
pub fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, c: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    for yy in y.min(ih)..(y.saturating_add(h)).min(ih) {
        for xx in x.min(iw)..(x.saturating_add(w)).min(iw) {
            img.put_pixel(xx, yy, c);
        }
    }
}

/// A `t`-pixel outline just inside `r` (clipped to the picture).
fn rectangle(img: &mut RgbImage, r: Region, t: u32) {
    let t = t.min(r.width.div_ceil(2)).min(r.height.div_ceil(2)).max(1);
    fill(img, r.x, r.y, r.width, t, BOX);
    fill(img, r.x, (r.y + r.height).saturating_sub(t), r.width, t, BOX);
    fill(img, r.x, r.y, t, r.height, BOX);
    fill(img, (r.x + r.width).saturating_sub(t), r.y, t, r.height, BOX);
}

const GLYPH_W: u32 = 5;
const GLYPH_H: u32 = 7;

/// `s` in a 5x7 pixel font, each font pixel `scale` x `scale`; lower case drawn as upper case,
/// characters without a glyph as `?`. Returns the x after the last character.
pub fn text(img: &mut RgbImage, x: u32, y: u32, scale: u32, s: &str, c: Rgb<u8>) -> u32 {
    let mut cx = x;
    for ch in s.chars() {
        let rows = glyph(ch.to_ascii_uppercase());
        for (ry, bits) in rows.iter().enumerate() {
            for rx in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - rx)) != 0 {
                    fill(img, cx + rx * scale, y + ry as u32 * scale, scale, scale, c);
                }
            }
        }
        cx += (GLYPH_W + 1) * scale;
    }
    cx
}

/// Rows of a 5x7 glyph, top first, the leftmost pixel in bit 4.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        'A' => [0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001],
        'B' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        'C' => [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        'D' => [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100],
        'E' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        'F' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        'G' => [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        'H' => [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'I' => [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'J' => [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
        'K' => [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        'L' => [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        'M' => [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        'N' => [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        'O' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'P' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        'Q' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        'R' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        'S' => [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        'T' => [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        'U' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'V' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'W' => [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        'X' => [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        'Y' => [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100],
        'Z' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0b01100, 0b01100],
        ',' => [0, 0, 0, 0, 0b01100, 0b00100, 0b01000],
        ';' => [0, 0b01100, 0b01100, 0, 0b01100, 0b00100, 0b01000],
        ':' => [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
        '-' => [0, 0, 0, 0b11111, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0b11111],
        '+' => [0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0],
        '=' => [0, 0, 0b11111, 0, 0b11111, 0, 0],
        '/' => [0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0],
        '(' => [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010],
        ')' => [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000],
        _ => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: u32, h: u32) -> image::DynamicImage {
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 3) % 200) as u8 + 30])))
    }

    #[test]
    fn the_box_and_the_caption_are_drawn_at_source_size() {
        let r = Region { x: 100, y: 80, width: 40, height: 60 };
        let img = annotate(&gray(360, 240), Some(r), "cam1 2026-12-05T00:00:00.000Z score 4.20 speed");
        assert_eq!(img.dimensions(), (360, 240));
        // The outline is red on all four sides, the inside untouched.
        for (x, y) in [(100, 100), (139, 100), (120, 80), (120, 139)] {
            assert_eq!(*img.get_pixel(x, y), BOX, "({x}, {y})");
        }
        assert_ne!(*img.get_pixel(120, 110), BOX);
        // The caption band: black with white text in it, nothing white below it.
        let band = GLYPH_H + 4;
        let white = (0..band).flat_map(|y| (0..360).map(move |x| (x, y))).filter(|&(x, y)| *img.get_pixel(x, y) == TEXT).count();
        assert!(white > 200, "{white} text pixels");
        assert!((0..360).all(|x| *img.get_pixel(x, band) != TEXT), "nothing written below the band");
    }

    #[test]
    fn a_box_past_the_edge_is_clipped() {
        let img = annotate(&gray(64, 48), Some(Region { x: 50, y: 40, width: 40, height: 40 }), "x");
        assert_eq!(*img.get_pixel(50, 47), BOX);
    }

    #[test]
    fn the_size_bound_is_met_by_lowering_quality_then_size() {
        let img = annotate(&gray(720, 480), None, "bound");
        let full = jpeg(&img, 90).unwrap();
        let b = jpeg_within(&img, 90, full.len(), None).unwrap().unwrap();
        assert_eq!(b, full, "fits as it is");
        assert_eq!(jpeg_within(&img, 90, full.len(), Some(full.clone())).unwrap().unwrap(), full);
        let small = jpeg_within(&img, 90, full.len() / 6, Some(full.clone())).unwrap().unwrap();
        assert!(small.len() <= full.len() / 6);
        assert!(image::load_from_memory(&small).is_ok());
        assert!(jpeg_within(&img, 90, 100, None).unwrap().is_none(), "nothing fits in 100 bytes");
    }
}
