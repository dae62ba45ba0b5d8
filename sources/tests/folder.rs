//! ImageFolder: listing order, decoding, corrupt/truncated frames, pacing and timestamps.

use std::path::Path;
use std::time::Duration;

use image::{DynamicImage, GenericImageView, ImageFormat, Luma, Rgb, RgbImage};
use sfn_sources::{Clock, FrameSource, ImageFolder, ImageFolderOptions, ManualClock, Pacing, SourceError};

/// A 8x6 picture whose pixels all have value `v` (grey RGB).
fn picture(v: u8) -> RgbImage {
    RgbImage::from_pixel(8, 6, Rgb([v, v, v]))
}

fn write(dir: &Path, name: &str, v: u8) {
    let format = ImageFormat::from_path(name).unwrap();
    picture(v).save_with_format(dir.join(name), format).unwrap();
}

fn names(folder: &ImageFolder) -> Vec<String> {
    folder.files().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

fn value(img: &DynamicImage) -> u8 {
    img.to_luma8().get_pixel(3, 3)[0]
}

fn jpeg_bytes(v: u8) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    picture(v).write_to(&mut out, ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

#[test]
fn numeric_stems_sort_numerically_and_junk_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    for (name, v) in [("10.png", 10), ("9.png", 9), ("1.png", 1), ("0002.png", 2), (".11.png", 11), ("12.PNG", 12)] {
        write(dir.path(), name, v);
    }
    std::fs::write(dir.path().join("notes.txt"), "not a frame").unwrap();
    std::fs::write(dir.path().join("Thumbs.db"), "junk").unwrap();
    std::fs::create_dir(dir.path().join("13.png")).unwrap(); // a directory, not a frame
    let mut folder = ImageFolder::open(dir.path(), ImageFolderOptions::default()).unwrap();
    assert_eq!(names(&folder), ["1.png", "0002.png", "9.png", "10.png", "12.PNG"]);
    let mut got = Vec::new();
    while let Some(frame) = folder.next_frame().unwrap() {
        assert_eq!(frame.index, got.len() as u64);
        got.push(value(&frame.image));
    }
    assert_eq!(got, [1, 2, 9, 10, 12]);
    assert!(folder.next_frame().unwrap().is_none(), "stays at the end");
    assert!(folder.describe().contains("5 frames"), "{}", folder.describe());
}

#[test]
fn mixed_stems_sort_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (name, v) in [("frame_b.jpg", 2), ("10.png", 0), ("frame_a.jpeg", 1), ("frame_c.tif", 3), ("frame_d.TIFF", 4)] {
        write(dir.path(), name, v * 50);
    }
    let mut folder = ImageFolder::open(dir.path(), ImageFolderOptions::default()).unwrap();
    assert_eq!(names(&folder), ["10.png", "frame_a.jpeg", "frame_b.jpg", "frame_c.tif", "frame_d.TIFF"]);
    let mut got = Vec::new();
    while let Some(frame) = folder.next_frame().unwrap() {
        assert_eq!(frame.image.dimensions(), (8, 6));
        got.push(value(&frame.image));
    }
    // JPEG is lossy, PNG and TIFF exact.
    assert_eq!(got[0], 0);
    assert!((got[1] as i32 - 50).abs() <= 2 && (got[2] as i32 - 100).abs() <= 2, "{got:?}");
    assert_eq!(&got[3..], &[150, 200]);
}

#[test]
fn corrupt_frame_is_an_error_naming_the_file_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.png", 10);
    std::fs::write(dir.path().join("2.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    write(dir.path(), "3.png", 30);
    let mut folder = ImageFolder::open(dir.path(), ImageFolderOptions::default()).unwrap();
    assert_eq!(value(&folder.next_frame().unwrap().unwrap().image), 10);
    let err = folder.next_frame().unwrap_err();
    assert!(matches!(err, SourceError::CorruptFrame { .. }), "{err:?}");
    assert!(err.to_string().contains("2.png"), "{err}");
    let f = folder.next_frame().unwrap().unwrap();
    assert_eq!((f.index, value(&f.image)), (2, 30), "the caller may go on; indices are file positions, so the lost frame leaves a gap");
    assert_eq!(folder.skipped(), 0);
}

#[test]
fn truncated_jpeg_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let full = jpeg_bytes(200);
    // Without the end-of-image marker the image decoder would fill the rest with grey.
    std::fs::write(dir.path().join("1.jpg"), &full[..full.len() - 2]).unwrap();
    // Zero padding after the marker is fine.
    let mut padded = full.clone();
    padded.extend_from_slice(&[0; 64]);
    std::fs::write(dir.path().join("2.jpg"), &padded).unwrap();
    // Truncated mid-scan and zero-padded: still truncated.
    let mut cut = full[..full.len() / 2].to_vec();
    cut.extend_from_slice(&[0; 64]);
    std::fs::write(dir.path().join("3.jpg"), &cut).unwrap();
    let mut folder = ImageFolder::open(dir.path(), ImageFolderOptions::default()).unwrap();
    let err = folder.next_frame().unwrap_err().to_string();
    assert!(err.contains("1.jpg") && err.contains("truncated JPEG"), "{err}");
    let ok = folder.next_frame().unwrap().unwrap();
    assert!((value(&ok.image) as i32 - 200).abs() <= 2);
    let err = folder.next_frame().unwrap_err().to_string();
    assert!(err.contains("3.jpg") && err.contains("0xFFD9"), "{err}");
    assert!(folder.next_frame().unwrap().is_none());
}

#[test]
fn truncated_png_and_empty_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.png", 1);
    let full = std::fs::read(dir.path().join("1.png")).unwrap();
    std::fs::write(dir.path().join("2.png"), &full[..full.len() - 20]).unwrap();
    std::fs::write(dir.path().join("3.png"), b"").unwrap();
    let mut folder = ImageFolder::open(dir.path(), ImageFolderOptions::default()).unwrap();
    folder.next_frame().unwrap().unwrap();
    let err = folder.next_frame().unwrap_err().to_string();
    assert!(err.contains("2.png"), "{err}");
    let err = folder.next_frame().unwrap_err().to_string();
    assert!(err.contains("3.png") && err.contains("empty"), "{err}");
}

#[test]
fn skip_corrupt_skips_counts_and_indices_stay_file_positions() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.png", 10);
    std::fs::write(dir.path().join("2.png"), b"not a png").unwrap();
    let full = jpeg_bytes(90);
    std::fs::write(dir.path().join("3.jpg"), &full[..full.len() - 100]).unwrap();
    write(dir.path(), "4.png", 40);
    std::fs::write(dir.path().join("5.png"), b"").unwrap();
    let options = ImageFolderOptions { skip_corrupt: true, ..Default::default() };
    let mut folder = ImageFolder::open(dir.path(), options).unwrap();
    let mut got = Vec::new();
    while let Some(f) = folder.next_frame().unwrap() {
        got.push((f.index, value(&f.image)));
    }
    assert_eq!(got, [(0, 10), (3, 40)]);
    assert_eq!(folder.skipped(), 3);
    assert_eq!(folder.delivered(), 2);
    assert!(folder.describe().contains("skipping corrupt"));
}

#[test]
fn a_frame_removed_after_listing_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.png", 1);
    write(dir.path(), "2.png", 2);
    let mut folder = ImageFolder::open(dir.path(), ImageFolderOptions::default()).unwrap();
    std::fs::remove_file(dir.path().join("1.png")).unwrap();
    let err = folder.next_frame().unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("1.png"), "{err}");
    assert_eq!(folder.next_frame().unwrap().unwrap().index, 1, "2.png keeps its position");
}

#[test]
fn empty_and_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.md"), "x").unwrap();
    let err = ImageFolder::open(dir.path(), ImageFolderOptions::default()).err().unwrap();
    assert!(matches!(err, SourceError::NoFrames { .. }), "{err:?}");
    let missing = dir.path().join("nope");
    let err = ImageFolder::open(&missing, ImageFolderOptions::default()).err().unwrap();
    assert!(matches!(err, SourceError::Io { .. }) && err.to_string().contains("nope"), "{err}");
    let bad = ImageFolderOptions { pacing: Pacing::RealTime { fps: 0.0 }, ..Default::default() };
    write(dir.path(), "1.png", 1);
    let err = ImageFolder::open(dir.path(), bad).err().unwrap().to_string();
    assert!(err.contains("frame rate") && err.contains("image folder"), "{err}");
}

#[test]
fn real_time_pacing_and_timestamps_with_a_fake_clock() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write(dir.path(), &format!("{i}.png"), i);
    }
    let clock = ManualClock::new(1_700_000_000_000);
    let options = ImageFolderOptions { pacing: Pacing::RealTime { fps: 4.0 }, ..Default::default() };
    let mut folder = ImageFolder::open(dir.path(), options).unwrap().with_clock(clock.clone());
    let mut stamps = Vec::new();
    let mut delivered_at = Vec::new();
    while let Some(f) = folder.next_frame().unwrap() {
        stamps.push(f.timestamp_ms);
        delivered_at.push(clock.now());
        clock.advance(Duration::from_millis(100)); // the consumer works 100 ms per frame
    }
    let ms = Duration::from_millis;
    assert_eq!(delivered_at, [0, 250, 500, 750, 1_000].map(ms), "on schedule, no drift");
    assert_eq!(clock.sleeps(), [150, 150, 150, 150].map(ms));
    let t0 = 1_700_000_000_000;
    assert_eq!(stamps, [t0, t0 + 250, t0 + 500, t0 + 750, t0 + 1_000]);
}

#[test]
fn as_fast_as_possible_never_sleeps_and_stamps_at_the_nominal_rate() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4 {
        write(dir.path(), &format!("{i}.png"), i);
    }
    let clock = ManualClock::new(5_000);
    let options = ImageFolderOptions { fps: Some(30.0), start_time_ms: Some(1_000_000), ..Default::default() };
    let mut folder = ImageFolder::open(dir.path(), options).unwrap().with_clock(clock.clone());
    let stamps: Vec<u64> = std::iter::from_fn(|| folder.next_frame().unwrap()).map(|f| f.timestamp_ms).collect();
    // start + index * 1000 / 30, rounded down.
    assert_eq!(stamps, [1_000_000, 1_000_033, 1_000_066, 1_000_100]);
    assert!(clock.sleeps().is_empty());
}

#[test]
fn default_timestamp_rate_and_start_are_the_pacing_rate_and_first_frame_time() {
    let opts = ImageFolderOptions::default();
    assert_eq!(opts.timestamp_fps(), 30.0);
    let opts = ImageFolderOptions { pacing: Pacing::RealTime { fps: 12.5 }, ..Default::default() };
    assert_eq!(opts.timestamp_fps(), 12.5);
}

#[test]
fn works_behind_the_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::GrayImage::from_pixel(4, 4, Luma([77]));
    img.save(dir.path().join("0.png")).unwrap();
    let mut source: Box<dyn FrameSource> = Box::new(ImageFolder::open(dir.path(), ImageFolderOptions::default()).unwrap());
    let f = source.next_frame().unwrap().unwrap();
    assert!(matches!(f.image, DynamicImage::ImageLuma8(_)), "grey PNGs stay grey");
    assert_eq!(value(&f.image), 77);
    assert!(source.next_frame().unwrap().is_none());
    assert!(source.describe().starts_with("image folder"));
}
