//! V4L2 cameras. The device-independent parts (format choice, capture timestamps) are always
//! compiled and tested; [`V4l2Camera`] itself needs the cargo feature `v4l`.

use crate::convert::PixelFormat;

/// The pixel format to ask the driver for: `requested` if the device lists it, else the first
/// convertible one it lists, in [`PixelFormat::PREFERENCE`] order. When it lists no convertible
/// format (or nothing: some drivers do not enumerate), `requested`: the driver's answer to
/// `VIDIOC_S_FMT` then decides, and an unconvertible answer is an error.
pub fn choose_format(requested: PixelFormat, offered: &[[u8; 4]]) -> PixelFormat {
    let offered: Vec<PixelFormat> = offered.iter().filter_map(|&c| PixelFormat::from_fourcc(c)).collect();
    if offered.contains(&requested) {
        return requested;
    }
    PixelFormat::PREFERENCE.into_iter().find(|f| offered.contains(f)).unwrap_or(requested)
}

/// Capture time in ms since the Unix epoch of a buffer stamped `buffer_mono_us` (µs of
/// `CLOCK_MONOTONIC`, as V4L2 drivers stamp buffers), seen at `now_mono_us` / `now_unix_ms`.
/// Falls back to `now_unix_ms` when the buffer has no stamp (0) or one that cannot be a recent
/// capture on this clock (in the future, or more than 10 s old).
pub fn capture_time_unix_ms(buffer_mono_us: u64, now_mono_us: u64, now_unix_ms: u64) -> u64 {
    const MAX_AGE_US: u64 = 10_000_000;
    if buffer_mono_us == 0 || buffer_mono_us > now_mono_us || now_mono_us - buffer_mono_us > MAX_AGE_US {
        return now_unix_ms;
    }
    now_unix_ms.saturating_sub((now_mono_us - buffer_mono_us) / 1_000)
}

#[cfg(feature = "v4l")]
mod v4l2;
#[cfg(feature = "v4l")]
pub use v4l2::{V4l2Camera, V4l2Config, V4l2Negotiated};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_choice() {
        use PixelFormat::*;
        assert_eq!(choose_format(Grey, &[*b"YUYV", *b"MJPG", *b"GREY"]), Grey);
        assert_eq!(choose_format(Grey, &[*b"MJPG", *b"YUYV"]), Yuyv);
        assert_eq!(choose_format(Yuyv, &[*b"NV12", *b"JPEG"]), Mjpg);
        assert_eq!(choose_format(Mjpg, &[*b"GREY"]), Grey);
        // Nothing enumerated (or nothing we know): ask for what was requested, the driver's
        // answer to VIDIOC_S_FMT decides.
        assert_eq!(choose_format(Mjpg, &[]), Mjpg);
        assert_eq!(choose_format(Yuyv, &[*b"NV12"]), Yuyv);
    }

    #[test]
    fn capture_time() {
        // Stamped 250 ms before now.
        assert_eq!(capture_time_unix_ms(5_000_000, 5_250_000, 1_700_000_000_000), 1_699_999_999_750);
        // No stamp, stamp from the future, stamp too old: now.
        assert_eq!(capture_time_unix_ms(0, 5_250_000, 1_000_000), 1_000_000);
        assert_eq!(capture_time_unix_ms(6_000_000, 5_250_000, 1_000_000), 1_000_000);
        assert_eq!(capture_time_unix_ms(1, 20_000_000, 1_000_000), 1_000_000);
    }
}
