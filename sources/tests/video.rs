//! VideoFile: encode a tiny video with ffmpeg-next's own encoders, decode it back.
#![cfg(feature = "video")]

use std::path::Path;
use std::time::Duration;

use ffmpeg::format::Pixel;
use ffmpeg::Rational;
use ffmpeg_next as ffmpeg;
use image::DynamicImage;
use sfn_sources::{FrameSource, ManualClock, Pacing, SourceError, VideoFile, VideoFileOptions, VideoPixels};

const W: u32 = 64;
const H: u32 = 48;

/// Frames as flat YUV (limited range) colours.
fn frames() -> Vec<[u8; 3]> {
    let mut v: Vec<[u8; 3]> = (0..10).map(|i| [16 + 20 * i as u8, 128, 128]).collect(); // greys
    v.push([81, 90, 240]); // red
    v.push([41, 240, 110]); // blue
    v
}

/// Expected RGB of a flat limited-range YUV colour (BT.601).
fn expected_rgb([y, u, v]: [u8; 3]) -> [f64; 3] {
    let (y, u, v) = (y as f64 - 16.0, u as f64 - 128.0, v as f64 - 128.0);
    [1.164 * y + 1.596 * v, 1.164 * y - 0.392 * u - 0.813 * v, 1.164 * y + 2.017 * u].map(|c| c.clamp(0.0, 255.0))
}

fn encode(path: &Path, codec_id: ffmpeg::codec::Id, pixel: Pixel, fps: i32, colours: &[[u8; 3]]) {
    ffmpeg::init().unwrap();
    let mut octx = ffmpeg::format::output(path).unwrap();
    let codec = ffmpeg::encoder::find(codec_id).expect("encoder built into libavcodec");
    let global_header = octx.format().flags().contains(ffmpeg::format::Flags::GLOBAL_HEADER);
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec).encoder().video().unwrap();
    let time_base = Rational::new(1, fps);
    enc.set_width(W);
    enc.set_height(H);
    enc.set_format(pixel);
    enc.set_time_base(time_base);
    enc.set_frame_rate(Some(Rational::new(fps, 1)));
    enc.set_bit_rate(4_000_000);
    enc.set_max_b_frames(0);
    enc.set_gop(4);
    enc.set_qmin(1);
    enc.set_qmax(3);
    if global_header {
        enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    }
    let mut enc = enc.open_as(codec).unwrap();
    {
        let mut ost = octx.add_stream(codec).unwrap();
        ost.set_parameters(&enc);
        ost.set_time_base(time_base);
    }
    octx.write_header().unwrap();
    let ost_time_base = octx.stream(0).unwrap().time_base();

    let drain = |enc: &mut ffmpeg::encoder::Video, octx: &mut ffmpeg::format::context::Output| {
        let mut packet = ffmpeg::Packet::empty();
        while enc.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            packet.rescale_ts(time_base, ost_time_base);
            packet.write_interleaved(octx).unwrap();
        }
    };
    for (i, yuv) in colours.iter().enumerate() {
        let mut frame = ffmpeg::frame::Video::new(pixel, W, H);
        for (plane, &value) in yuv.iter().enumerate() {
            frame.data_mut(plane).fill(value);
        }
        frame.set_pts(Some(i as i64));
        enc.send_frame(&frame).unwrap();
        drain(&mut enc, &mut octx);
    }
    enc.send_eof().unwrap();
    drain(&mut enc, &mut octx);
    octx.write_trailer().unwrap();
}

fn mean_rgb(img: &DynamicImage) -> [f64; 3] {
    let rgb = img.to_rgb8();
    let mut sum = [0f64; 3];
    for p in rgb.pixels() {
        for c in 0..3 {
            sum[c] += p[c] as f64;
        }
    }
    sum.map(|s| s / (rgb.width() * rgb.height()) as f64)
}

fn check_round_trip(file: &str, codec: ffmpeg::codec::Id, pixel: Pixel, tolerance: f64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    let colours = frames();
    encode(&path, codec, pixel, 10, &colours);

    let options = VideoFileOptions { start_time_ms: Some(2_000_000), ..Default::default() };
    let mut video = VideoFile::open(&path, options).unwrap();
    assert_eq!(video.dimensions(), (W, H));
    assert!((video.fps() - 10.0).abs() < 1e-6, "fps {}", video.fps());
    assert!(video.describe().contains(file), "{}", video.describe());
    let mut n = 0;
    while let Some(frame) = video.next_frame().unwrap() {
        assert_eq!(frame.index, n as u64);
        assert_eq!(frame.timestamp_ms, 2_000_000 + 100 * n as u64);
        assert!(matches!(frame.image, DynamicImage::ImageRgb8(_)));
        assert_eq!((frame.image.width(), frame.image.height()), (W, H));
        let got = mean_rgb(&frame.image);
        let want = expected_rgb(colours[n]);
        for c in 0..3 {
            assert!((got[c] - want[c]).abs() <= tolerance, "{file} frame {n} channel {c}: got {got:?}, expected {want:?}");
        }
        n += 1;
    }
    assert_eq!(n, colours.len(), "{file}: frame count");
    assert!(video.next_frame().unwrap().is_none());
}

#[test]
fn mpeg4_avi_round_trip() {
    check_round_trip("tiny.avi", ffmpeg::codec::Id::MPEG4, Pixel::YUV420P, 3.0);
}

#[test]
fn mpeg4_mkv_round_trip() {
    check_round_trip("tiny.mkv", ffmpeg::codec::Id::MPEG4, Pixel::YUV420P, 3.0);
}

#[test]
fn gray_output_and_real_time_pacing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grey.avi");
    let colours: Vec<[u8; 3]> = (0..6).map(|i| [16 + 40 * i as u8, 128, 128]).collect();
    encode(&path, ffmpeg::codec::Id::MPEG4, Pixel::YUV420P, 5, &colours);
    let clock = ManualClock::new(10_000);
    let options = VideoFileOptions { pacing: Pacing::RealTime { fps: 5.0 }, pixels: VideoPixels::Gray8, start_time_ms: None };
    let mut video = VideoFile::open(&path, options).unwrap().with_clock(clock.clone());
    let mut means = Vec::new();
    let mut stamps = Vec::new();
    while let Some(frame) = video.next_frame().unwrap() {
        let DynamicImage::ImageLuma8(grey) = &frame.image else {
            panic!("expected Luma8, got {:?}", frame.image.color());
        };
        means.push(grey.pixels().map(|p| p[0] as f64).sum::<f64>() / (W * H) as f64);
        stamps.push(frame.timestamp_ms);
    }
    assert_eq!(means.len(), 6);
    // swscale's GRAY8 is full range: 1.164 (Y - 16).
    for (mean, yuv) in means.iter().zip(&colours) {
        let want = expected_rgb(*yuv)[0];
        assert!((mean - want).abs() <= 3.0, "grey means {means:?}, expected {want} for Y={}", yuv[0]);
    }
    assert_eq!(stamps, [10_000, 10_200, 10_400, 10_600, 10_800, 11_000]);
    assert_eq!(clock.sleeps(), vec![Duration::from_millis(200); 5]);
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.mp4");
    let err = VideoFile::open(&missing, VideoFileOptions::default()).err().unwrap();
    assert!(err.to_string().contains("missing.mp4"), "{err}");
    let junk = dir.path().join("junk.avi");
    std::fs::write(&junk, b"this is not a video file at all").unwrap();
    let err = VideoFile::open(&junk, VideoFileOptions::default()).err().unwrap();
    assert!(matches!(err, SourceError::Video { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.avi"), "{err}");
}
