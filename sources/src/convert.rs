//! Pixel-format conversions for camera buffers, as pure functions over byte slices (no V4L2
//! needed, so they are compiled and tested everywhere).
//!
//! - GREY (8-bit luma) → [`image::GrayImage`] ([`grey_to_luma`]);
//! - YUYV (packed 4:2:2, `Y0 U Y1 V`) → [`image::RgbImage`] with BT.601 limited-range
//!   coefficients ([`yuyv_to_rgb`]);
//! - MJPG (one JPEG per buffer) → decoded with `image` ([`mjpg_decode`]), after checking for the
//!   end-of-image marker and inserting the standard Huffman tables that many UVC cameras omit.

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};

/// The camera pixel formats this crate converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 8-bit grey, one byte per pixel (`GREY`).
    Grey,
    /// Packed YUV 4:2:2, `Y0 U Y1 V` for each pair of pixels (`YUYV`).
    Yuyv,
    /// Motion JPEG: each buffer is one JPEG picture (`MJPG`, also accepted as `JPEG`).
    Mjpg,
}

impl PixelFormat {
    /// All formats, in the order preferred when the requested one is not offered.
    pub const PREFERENCE: [PixelFormat; 3] = [PixelFormat::Yuyv, PixelFormat::Mjpg, PixelFormat::Grey];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Grey => *b"GREY",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpg => *b"MJPG",
        }
    }

    /// The format for a V4L2 four-character code, `None` if not supported.
    pub fn from_fourcc(code: [u8; 4]) -> Option<PixelFormat> {
        match &code {
            b"GREY" => Some(PixelFormat::Grey),
            b"YUYV" => Some(PixelFormat::Yuyv),
            b"MJPG" | b"JPEG" => Some(PixelFormat::Mjpg),
            _ => None,
        }
    }

    /// Bytes per line of a tightly packed frame (`None` for compressed MJPG).
    pub fn packed_stride(self, width: u32) -> Option<usize> {
        match self {
            PixelFormat::Grey => Some(width as usize),
            PixelFormat::Yuyv => Some(width.div_ceil(2) as usize * 4),
            PixelFormat::Mjpg => None,
        }
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&fourcc_string(self.fourcc()))
    }
}

/// A four-character code as text, non-printable bytes escaped.
pub fn fourcc_string(code: [u8; 4]) -> String {
    code.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { (b as char).to_string() } else { format!("\\x{b:02x}") }).collect()
}

/// Why a buffer could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("empty frame size {width}x{height}")]
    ZeroSize { width: u32, height: u32 },
    #[error("line stride {stride} is smaller than one line of {format} ({min} bytes)")]
    StrideTooSmall { format: PixelFormat, stride: usize, min: usize },
    #[error("buffer holds {got} bytes, a {width}x{height} {format} frame needs {needed}")]
    ShortBuffer { format: PixelFormat, width: u32, height: u32, needed: usize, got: usize },
    #[error("not a JPEG picture (no start-of-image marker)")]
    NotJpeg,
    #[error("truncated JPEG (no end-of-image marker 0xFFD9)")]
    TruncatedJpeg,
    #[error("JPEG decoding failed: {0}")]
    Jpeg(String),
}

fn check_layout(format: PixelFormat, len: usize, width: u32, height: u32, stride: usize) -> Result<usize, ConvertError> {
    if width == 0 || height == 0 {
        return Err(ConvertError::ZeroSize { width, height });
    }
    let min = format.packed_stride(width).unwrap_or(0);
    let stride = if stride == 0 { min } else { stride };
    if stride < min {
        return Err(ConvertError::StrideTooSmall { format, stride, min });
    }
    // The last line need not be padded.
    let needed = stride * (height as usize - 1) + min;
    if len < needed {
        return Err(ConvertError::ShortBuffer { format, width, height, needed, got: len });
    }
    Ok(stride)
}

/// GREY → `Luma8`. `stride` is the number of bytes per line (V4L2 `bytesperline`); 0 means
/// tightly packed (`width`).
pub fn grey_to_luma(data: &[u8], width: u32, height: u32, stride: usize) -> Result<GrayImage, ConvertError> {
    let stride = check_layout(PixelFormat::Grey, data.len(), width, height, stride)?;
    let w = width as usize;
    let mut out = Vec::with_capacity(w * height as usize);
    for row in 0..height as usize {
        out.extend_from_slice(&data[row * stride..row * stride + w]);
    }
    Ok(GrayImage::from_raw(width, height, out).expect("buffer size matches"))
}

/// One YUV sample (BT.601, limited range: Y in 16..=235, U/V in 16..=240) to RGB, in the usual
/// 8-bit fixed-point form: `R = 1.164 (Y-16) + 1.596 (V-128)`,
/// `G = 1.164 (Y-16) - 0.392 (U-128) - 0.813 (V-128)`, `B = 1.164 (Y-16) + 2.017 (U-128)`,
/// each rounded and clamped to 0..=255.
#[inline]
pub fn yuv_to_rgb_bt601(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [clamp(c + 409 * e), clamp(c - 100 * d - 208 * e), clamp(c + 516 * d)]
}

/// YUYV (packed 4:2:2, `Y0 U Y1 V` for each pair of pixels) → `Rgb8` with BT.601 limited-range
/// coefficients ([`yuv_to_rgb_bt601`]). `stride` is the number of bytes per line; 0 means
/// tightly packed (`2 * width`, rounded up to whole pixel pairs). An odd width uses the first
/// pixel of the last pair.
pub fn yuyv_to_rgb(data: &[u8], width: u32, height: u32, stride: usize) -> Result<RgbImage, ConvertError> {
    let stride = check_layout(PixelFormat::Yuyv, data.len(), width, height, stride)?;
    let w = width as usize;
    let mut out = vec![0u8; w * 3 * height as usize];
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        let src = &data[row * stride..];
        for (pair, px) in dst.chunks_mut(6).enumerate() {
            let m = &src[pair * 4..pair * 4 + 4];
            let (y0, u, y1, v) = (m[0], m[1], m[2], m[3]);
            px[..3].copy_from_slice(&yuv_to_rgb_bt601(y0, u, v));
            if px.len() == 6 {
                px[3..].copy_from_slice(&yuv_to_rgb_bt601(y1, u, v));
            }
        }
    }
    Ok(RgbImage::from_raw(width, height, out).expect("buffer size matches"))
}

/// The bytes of a JPEG picture without trailing zero bytes (camera buffers and some files
/// are padded with zeros after the end-of-image marker).
pub fn trim_trailing_zeros(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &data[..end]
}

/// Whether a JPEG picture is complete: it ends with the end-of-image marker `0xFF 0xD9`,
/// trailing zero bytes ignored. (The `image` JPEG decoder silently fills a truncated scan with
/// grey, so truncation must be caught before decoding.)
pub fn jpeg_is_complete(data: &[u8]) -> bool {
    trim_trailing_zeros(data).ends_with(&[0xFF, 0xD9])
}

/// The Huffman tables of ITU T.81 Annex K.3 (K.3–K.6), as one DHT segment: what MJPEG
/// streams that carry no DHT of their own are encoded with.
const DEFAULT_DHT: [u8; 420] = {
    const LUMA_DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const CHROMA_DC_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const LUMA_AC_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D];
    const LUMA_AC_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
        0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
        0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
        0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
        0xF9, 0xFA,
    ];
    const CHROMA_AC_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
    const CHROMA_AC_VALUES: [u8; 162] = [
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
        0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
        0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
        0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
        0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
        0xF9, 0xFA,
    ];
    let mut out = [0u8; 420];
    // Marker and length (418: everything after the marker).
    out[0] = 0xFF;
    out[1] = 0xC4;
    out[2] = 0x01;
    out[3] = 0xA2;
    let mut pos = 4;
    let tables: [(u8, &[u8; 16], &[u8]); 4] =
        [(0x00, &LUMA_DC_BITS, &DC_VALUES), (0x10, &LUMA_AC_BITS, &LUMA_AC_VALUES), (0x01, &CHROMA_DC_BITS, &DC_VALUES), (0x11, &CHROMA_AC_BITS, &CHROMA_AC_VALUES)];
    let mut t = 0;
    while t < 4 {
        let (class, bits, values) = tables[t];
        out[pos] = class;
        pos += 1;
        let mut i = 0;
        while i < 16 {
            out[pos] = bits[i];
            pos += 1;
            i += 1;
        }
        let mut i = 0;
        while i < values.len() {
            out[pos] = values[i];
            pos += 1;
            i += 1;
        }
        t += 1;
    }
    assert!(pos == 420);
    out
};

/// Where a DHT segment must go if the picture has none: the offset of the first start-of-scan
/// marker, when no DHT precedes it. `None` when the picture has its own tables or its marker
/// structure cannot be followed (then it is decoded as it is).
fn missing_dht_insert_at(data: &[u8]) -> Option<usize> {
    let mut pos = 2; // after SOI
    loop {
        if *data.get(pos)? != 0xFF {
            return None;
        }
        // Fill bytes: any number of 0xFF before the marker code.
        let mut code_at = pos + 1;
        while *data.get(code_at)? == 0xFF {
            code_at += 1;
        }
        let code = data[code_at];
        match code {
            0xDA => return Some(code_at - 1),
            0xC4 => return None,
            0xD9 => return None,
            0x01 | 0xD0..=0xD7 => pos = code_at + 1,
            _ => {
                let len = u16::from_be_bytes([*data.get(code_at + 1)?, *data.get(code_at + 2)?]) as usize;
                if len < 2 {
                    return None;
                }
                pos = code_at + 1 + len;
            }
        }
    }
}

/// MJPG buffer → decoded picture (`Rgb8` for colour, `Luma8` for grey JPEGs). Trailing zero
/// padding is ignored; a buffer without the end-of-image marker is a [`ConvertError::TruncatedJpeg`]
/// (the decoder would fill the missing part with grey); a picture without Huffman tables (the
/// MJPEG convention) gets the standard ones.
pub fn mjpg_decode(data: &[u8]) -> Result<DynamicImage, ConvertError> {
    let data = trim_trailing_zeros(data);
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(ConvertError::NotJpeg);
    }
    if !data.ends_with(&[0xFF, 0xD9]) {
        return Err(ConvertError::TruncatedJpeg);
    }
    let decode = |bytes: &[u8]| image::load_from_memory_with_format(bytes, ImageFormat::Jpeg).map_err(|e| ConvertError::Jpeg(e.to_string()));
    match missing_dht_insert_at(data) {
        Some(at) => {
            let mut with_dht = Vec::with_capacity(data.len() + DEFAULT_DHT.len());
            with_dht.extend_from_slice(&data[..at]);
            with_dht.extend_from_slice(&DEFAULT_DHT);
            with_dht.extend_from_slice(&data[at..]);
            decode(&with_dht)
        }
        None => decode(data),
    }
}

/// A camera buffer in `format` → picture: GREY → `Luma8`, YUYV → `Rgb8`, MJPG → decoded.
/// `stride` (bytes per line, 0 = packed) is ignored for MJPG.
pub fn to_image(format: PixelFormat, data: &[u8], width: u32, height: u32, stride: usize) -> Result<DynamicImage, ConvertError> {
    match format {
        PixelFormat::Grey => grey_to_luma(data, width, height, stride).map(DynamicImage::ImageLuma8),
        PixelFormat::Yuyv => yuyv_to_rgb(data, width, height, stride).map(DynamicImage::ImageRgb8),
        PixelFormat::Mjpg => mjpg_decode(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::{GenericImageView, Rgb};

    fn yuyv(pixels_pairs: &[[u8; 4]]) -> Vec<u8> {
        pixels_pairs.iter().flatten().copied().collect()
    }

    #[test]
    fn yuyv_white_black_red_by_hand() {
        // Limited range: white Y=235, black Y=16, U=V=128; BT.601 red = (Y 81, U 90, V 240).
        // White: (298*219 + 128) >> 8 = 255; black: 0; red: R = (298*65 + 409*112 + 128) >> 8
        // = 255, G = (298*65 - 100*(-38) - 208*112 + 128) >> 8 = 0, B = (298*65 + 516*(-38)
        // + 128) >> 8 < 0 -> 0.
        let data = yuyv(&[[235, 128, 235, 128], [16, 128, 16, 128], [81, 90, 81, 240]]);
        let img = yuyv_to_rgb(&data, 6, 1, 0).unwrap();
        assert_eq!(img.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(img.get_pixel(1, 0), &Rgb([255, 255, 255]));
        assert_eq!(img.get_pixel(2, 0), &Rgb([0, 0, 0]));
        assert_eq!(img.get_pixel(3, 0), &Rgb([0, 0, 0]));
        assert_eq!(img.get_pixel(4, 0), &Rgb([255, 0, 0]));
        assert_eq!(img.get_pixel(5, 0), &Rgb([255, 0, 0]));
    }

    #[test]
    fn yuyv_grey_green_blue_and_pair_sharing() {
        // Mid grey Y=126: (298*110 + 128) >> 8 = 128.
        assert_eq!(yuv_to_rgb_bt601(126, 128, 128), [128, 128, 128]);
        // BT.601 green (Y 145, U 54, V 34): R = (38442 - 38446 + 128) >> 8 = 0,
        // G = (38442 + 7400 + 19552 + 128) >> 8 = 255, B = (38442 - 38184 + 128) >> 8 = 1.
        assert_eq!(yuv_to_rgb_bt601(145, 54, 34), [0, 255, 1]);
        // BT.601 blue (Y 41, U 240, V 110): R = (7450 - 7362 + 128) >> 8 = 0,
        // G = (7450 - 11200 + 3744 + 128) >> 8 = 0, B = (7450 + 57792 + 128) >> 8 = 255.
        assert_eq!(yuv_to_rgb_bt601(41, 240, 110), [0, 0, 255]);
        // Both pixels of a pair share U and V, each keeps its own Y.
        let img = yuyv_to_rgb(&[235, 128, 16, 128], 2, 1, 0).unwrap();
        assert_eq!(img.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(img.get_pixel(1, 0), &Rgb([0, 0, 0]));
    }

    #[test]
    fn yuyv_matches_float_formula_within_one() {
        for y in (0..=255).step_by(7) {
            for u in (0..=255).step_by(11) {
                for v in (0..=255).step_by(13) {
                    let (yf, uf, vf) = (y as f64 - 16.0, u as f64 - 128.0, v as f64 - 128.0);
                    let r = 1.164 * yf + 1.596 * vf;
                    let g = 1.164 * yf - 0.392 * uf - 0.813 * vf;
                    let b = 1.164 * yf + 2.017 * uf;
                    let want = [r, g, b].map(|x| x.round().clamp(0.0, 255.0));
                    let got = yuv_to_rgb_bt601(y as u8, u as u8, v as u8);
                    for c in 0..3 {
                        assert!((got[c] as f64 - want[c]).abs() <= 1.0, "yuv ({y},{u},{v}) channel {c}: got {got:?}, float {want:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn yuyv_stride_padding_and_odd_width() {
        // 3x2 frame, stride 12 (8 bytes of pairs + 4 padding bytes per line).
        let mut data = vec![0xEE; 12 * 2];
        data[..8].copy_from_slice(&[235, 128, 16, 128, 81, 90, 0, 240]);
        data[12..20].copy_from_slice(&[16, 128, 235, 128, 126, 128, 0, 128]);
        let img = yuyv_to_rgb(&data, 3, 2, 12).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(img.get_pixel(1, 0), &Rgb([0, 0, 0]));
        assert_eq!(img.get_pixel(2, 0), &Rgb([255, 0, 0]));
        assert_eq!(img.get_pixel(0, 1), &Rgb([0, 0, 0]));
        assert_eq!(img.get_pixel(1, 1), &Rgb([255, 255, 255]));
        assert_eq!(img.get_pixel(2, 1), &Rgb([128, 128, 128]));
        // The last line needs no padding.
        assert!(yuyv_to_rgb(&data[..20], 3, 2, 12).is_ok());
    }

    #[test]
    fn layout_errors() {
        assert_eq!(yuyv_to_rgb(&[0; 7], 2, 2, 0), Err(ConvertError::ShortBuffer { format: PixelFormat::Yuyv, width: 2, height: 2, needed: 8, got: 7 }));
        assert!(matches!(yuyv_to_rgb(&[0; 64], 4, 2, 6), Err(ConvertError::StrideTooSmall { min: 8, stride: 6, .. })));
        assert!(matches!(grey_to_luma(&[], 0, 4, 0), Err(ConvertError::ZeroSize { .. })));
        assert!(matches!(grey_to_luma(&[1, 2, 3], 2, 2, 0), Err(ConvertError::ShortBuffer { needed: 4, .. })));
        let msg = yuyv_to_rgb(&[0; 7], 2, 2, 0).unwrap_err().to_string();
        assert!(msg.contains("7 bytes") && msg.contains("2x2 YUYV"), "{msg}");
    }

    #[test]
    fn grey_copies_rows_and_drops_padding() {
        let data = [1, 2, 3, 99, 4, 5, 6, 99];
        let img = grey_to_luma(&data, 3, 2, 4).unwrap();
        assert_eq!(img.into_raw(), vec![1, 2, 3, 4, 5, 6]);
        let img = grey_to_luma(&[7, 8, 9, 10], 2, 2, 0).unwrap();
        assert_eq!(img.into_raw(), vec![7, 8, 9, 10]);
    }

    #[test]
    fn fourcc_round_trip() {
        for f in PixelFormat::PREFERENCE {
            assert_eq!(PixelFormat::from_fourcc(f.fourcc()), Some(f));
        }
        assert_eq!(PixelFormat::from_fourcc(*b"JPEG"), Some(PixelFormat::Mjpg));
        assert_eq!(PixelFormat::from_fourcc(*b"NV12"), None);
        assert_eq!(PixelFormat::Yuyv.to_string(), "YUYV");
        assert_eq!(fourcc_string([b'A', 0, b'B', b'C']), "A\\x00BC");
    }

    fn test_jpeg(w: u32, h: u32) -> (Vec<u8>, RgbImage) {
        let img = RgbImage::from_fn(w, h, |x, y| {
            if x < w / 2 {
                Rgb([230, 30, 30])
            } else if y < h / 2 {
                Rgb([30, 200, 40])
            } else {
                Rgb([20, 40, 220])
            }
        });
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 95).encode_image(&img).unwrap();
        (bytes, img)
    }

    fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
        let s: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as i64 - y as i64).unsigned_abs()).sum();
        s as f64 / a.as_raw().len() as f64
    }

    #[test]
    fn mjpg_decodes_and_ignores_zero_padding() {
        let (mut bytes, original) = test_jpeg(32, 16);
        bytes.extend_from_slice(&[0; 100]); // camera buffers are padded
        let img = mjpg_decode(&bytes).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (32, 16));
        assert!(mean_abs_diff(&img, &original) < 6.0);
    }

    #[test]
    fn mjpg_detects_truncation_and_garbage() {
        let (bytes, _) = test_jpeg(32, 16);
        assert_eq!(mjpg_decode(&bytes[..bytes.len() / 2]).unwrap_err(), ConvertError::TruncatedJpeg);
        // Truncated, then zero-filled to the buffer size: still truncated.
        let mut padded = bytes[..bytes.len() - 10].to_vec();
        padded.resize(bytes.len() + 50, 0);
        assert_eq!(mjpg_decode(&padded).unwrap_err(), ConvertError::TruncatedJpeg);
        assert_eq!(mjpg_decode(&[1, 2, 3, 0xFF, 0xD9]).unwrap_err(), ConvertError::NotJpeg);
        assert_eq!(mjpg_decode(&[]).unwrap_err(), ConvertError::NotJpeg);
        assert!(jpeg_is_complete(&bytes));
        assert!(!jpeg_is_complete(&bytes[..bytes.len() - 1]));
    }

    /// Remove every DHT segment (before the scan) from a JPEG.
    fn strip_dht(data: &[u8]) -> Vec<u8> {
        let mut out = data[..2].to_vec();
        let mut pos = 2;
        loop {
            assert_eq!(data[pos], 0xFF);
            let code = data[pos + 1];
            if code == 0xDA {
                out.extend_from_slice(&data[pos..]);
                return out;
            }
            let len = u16::from_be_bytes([data[pos + 2], data[pos + 3]]) as usize;
            if code != 0xC4 {
                out.extend_from_slice(&data[pos..pos + 2 + len]);
            }
            pos += 2 + len;
        }
    }

    #[test]
    fn mjpg_without_huffman_tables_gets_the_standard_ones() {
        let (bytes, _) = test_jpeg(48, 32);
        let reference = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let stripped = strip_dht(&bytes);
        assert!(stripped.len() < bytes.len(), "the encoder wrote DHT segments");
        assert!(missing_dht_insert_at(&stripped).is_some());
        assert!(missing_dht_insert_at(&bytes).is_none());
        let img = mjpg_decode(&stripped).unwrap().to_rgb8();
        assert_eq!(img, reference, "default tables are the ones the encoder used");
    }

    #[test]
    fn default_dht_segment_is_well_formed() {
        assert_eq!(&DEFAULT_DHT[..4], &[0xFF, 0xC4, 0x01, 0xA2]);
        // Each table: class/id byte, 16 counts, then as many values as the counts add up to.
        let mut pos = 4;
        let mut classes = Vec::new();
        while pos < DEFAULT_DHT.len() {
            classes.push(DEFAULT_DHT[pos]);
            let n: usize = DEFAULT_DHT[pos + 1..pos + 17].iter().map(|&b| b as usize).sum();
            pos += 17 + n;
        }
        assert_eq!(pos, DEFAULT_DHT.len());
        assert_eq!(classes, vec![0x00, 0x10, 0x01, 0x11]);
    }

    #[test]
    fn to_image_dispatches_by_format() {
        let g = to_image(PixelFormat::Grey, &[10, 20, 30, 40], 2, 2, 0).unwrap();
        assert!(matches!(g, DynamicImage::ImageLuma8(_)));
        let c = to_image(PixelFormat::Yuyv, &[235, 128, 235, 128], 2, 1, 0).unwrap();
        assert!(matches!(c, DynamicImage::ImageRgb8(_)));
        let (bytes, _) = test_jpeg(16, 8);
        let j = to_image(PixelFormat::Mjpg, &bytes, 16, 8, 0).unwrap();
        assert_eq!(j.dimensions(), (16, 8));
    }
}
