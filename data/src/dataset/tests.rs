use super::*;
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::fs;

const GRAY_SMALL: FrameFormat = FrameFormat { height: 4, width: 6, channels: 1 };

/// Writes a gray PNG whose every pixel is `value`.
fn gray_png(path: &Path, w: u32, h: u32, value: u8) {
    GrayImage::from_pixel(w, h, Luma([value])).save(path).unwrap();
}

/// `<root>/<split>/frames/<clip>/` with `n` gray frames 000..; frame k has value 10*k.
fn make_clip(root: &Path, split: &str, clip: &str, n: usize) -> PathBuf {
    let dir = root.join(split).join("frames").join(clip);
    fs::create_dir_all(&dir).unwrap();
    for k in 0..n {
        gray_png(&dir.join(format!("{k:03}.png")), 6, 4, (10 * k) as u8);
    }
    dir
}

fn value_of(v: u8) -> f32 {
    2.0 * f32::from(v) / 255.0 - 1.0
}

fn open_err(root: &Path) -> DataError {
    Dataset::open(root, "training", &GRAY_SMALL).unwrap_err()
}

#[test]
fn opens_sorted_clips_and_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_clip(root, "training", "04", 6);
    make_clip(root, "training", "01", 5);
    make_clip(root, "training", "03", 7);
    // Numeric (not lexicographic) order: 9 before 10.
    let odd = root.join("training/frames/02");
    fs::create_dir_all(&odd).unwrap();
    for (name, v) in [("10.png", 100u8), ("9.png", 90), ("8.png", 80), ("11.png", 110), ("7.png", 70)] {
        gray_png(&odd.join(name), 6, 4, v);
    }
    // Ignored: other extensions, hidden files, sub-folders, files beside the clips.
    fs::write(odd.join("notes.txt"), b"x").unwrap();
    fs::write(odd.join(".12.png"), b"not an image").unwrap();
    fs::create_dir_all(odd.join("13.png")).unwrap();
    fs::write(root.join("training/frames/readme.md"), b"x").unwrap();

    let ds = Dataset::open(root, "training", &GRAY_SMALL).unwrap();
    let names: Vec<&str> = ds.clips.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["01", "02", "03", "04"]);
    assert_eq!(ds.num_frames(), 5 + 5 + 7 + 6);
    let c2 = &ds.clips[1];
    let stems: Vec<String> = c2.paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(stems, ["7.png", "8.png", "9.png", "10.png", "11.png"]);
    for (k, frame) in c2.frames.iter().enumerate() {
        assert_eq!(frame.len(), 24);
        let want = value_of(70 + 10 * k as u8);
        assert!(frame.iter().all(|&v| (v - want).abs() < 1e-6), "frame {k}: {} vs {want}", frame[0]);
    }
    // Values span [-1, 1].
    assert_eq!(ds.clips[0].frames[0][0], -1.0);
    gray_png(&root.join("training/frames/01/005.png"), 6, 4, 255);
    let ds = Dataset::open(root, "training", &GRAY_SMALL).unwrap();
    assert_eq!(ds.clips[0].frames[5][0], 1.0);
}

#[test]
fn lexicographic_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("training/frames/a");
    fs::create_dir_all(&dir).unwrap();
    for name in ["f10.png", "f9.png", "f1.png", "f2.png", "3.png"] {
        gray_png(&dir.join(name), 6, 4, 0);
    }
    let ds = Dataset::open(tmp.path(), "training", &GRAY_SMALL).unwrap();
    let names: Vec<String> = ds.clips[0].paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["3.png", "f1.png", "f10.png", "f2.png", "f9.png"]);
}

#[test]
fn resizes_and_converts_rgb_to_chw_and_gray() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("testing/frames/01");
    fs::create_dir_all(&dir).unwrap();
    for k in 0..5 {
        // Left half red, right half blue, 16x8 native.
        let img = RgbImage::from_fn(16, 8, |x, _| if x < 8 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        img.save(dir.join(format!("{k}.png"))).unwrap();
    }
    let rgb = FrameFormat { height: 2, width: 4, channels: 3 };
    let ds = Dataset::open(tmp.path(), "testing", &rgb).unwrap();
    let f = &ds.clips[0].frames[0];
    assert_eq!(f.len(), 3 * 2 * 4);
    // CHW: red plane first; pixel (0,0) red, pixel (0,3) blue.
    let plane = 8;
    assert!((f[0] - 1.0).abs() < 1e-6 && (f[plane] + 1.0).abs() < 1e-6 && (f[2 * plane] + 1.0).abs() < 1e-6);
    assert!((f[3] + 1.0).abs() < 1e-6 && (f[2 * plane + 3] - 1.0).abs() < 1e-6);
    let gray = FrameFormat { height: 8, width: 16, channels: 1 };
    let ds = Dataset::open(tmp.path(), "testing", &gray).unwrap();
    let f = &ds.clips[0].frames[0];
    // Rec. 709 luma of pure red and pure blue.
    assert!((f[0] - (2.0 * 0.2126 - 1.0)).abs() < 1e-3, "{}", f[0]);
    assert!((f[15] - (2.0 * 0.0722 - 1.0)).abs() < 1e-3, "{}", f[15]);
}

#[test]
fn windows_shuffles_and_batches() {
    let tmp = tempfile::tempdir().unwrap();
    make_clip(tmp.path(), "training", "01", 6);
    make_clip(tmp.path(), "training", "05", 5);
    let ds = Dataset::open(tmp.path(), "training", &GRAY_SMALL).unwrap();
    assert_eq!(ds.windows(), vec![(0, 4), (0, 5), (1, 4)]);

    let a = ds.shuffled_windows(7, 0);
    assert_eq!(a, ds.shuffled_windows(7, 0));
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, ds.windows());

    let b = ds.try_batch(&[(0, 5), (1, 4)]).unwrap();
    assert_eq!(b.len(), 2 * WINDOW * 24);
    // Window (0, 5): frames 1..=5, values 10..=50; window (1, 4): frames 0..=4.
    let firsts: Vec<f32> = b.chunks(24).map(|f| f[0]).collect();
    let want: Vec<f32> = [10u8, 20, 30, 40, 50, 0, 10, 20, 30, 40].iter().map(|&v| value_of(v)).collect();
    assert_eq!(firsts, want);
    assert!(matches!(ds.try_batch(&[(0, 3)]), Err(DataError::BadWindow { clip: 0, target: 3 })));
    assert!(matches!(ds.try_batch(&[(0, 6)]), Err(DataError::BadWindow { .. })));
    assert!(matches!(ds.try_batch(&[(2, 4)]), Err(DataError::BadWindow { .. })));
    assert!(ds.try_batch(&[]).unwrap().is_empty());
}

#[test]
fn shuffle_depends_on_seed_and_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    make_clip(tmp.path(), "training", "01", 40);
    let ds = Dataset::open(tmp.path(), "training", &GRAY_SMALL).unwrap();
    let base = ds.shuffled_windows(1, 0);
    assert_ne!(base, ds.windows());
    assert_ne!(base, ds.shuffled_windows(1, 1));
    assert_ne!(base, ds.shuffled_windows(2, 0));
    // Every position is reachable: over many epochs the first window is not always the same.
    let firsts: std::collections::BTreeSet<_> = (0..50).map(|e| ds.shuffled_windows(1, e)[0]).collect();
    assert!(firsts.len() > 10);
}

#[test]
fn bounded_draws_are_in_range_and_cover() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut seen = [0usize; 7];
    for _ in 0..7000 {
        seen[bounded(&mut rng, 7) as usize] += 1;
    }
    assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    assert_eq!(bounded(&mut rng, 1), 0);
}

#[test]
fn error_missing_root_and_split() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let e = Dataset::open(&missing, "training", &GRAY_SMALL).unwrap_err();
    assert!(matches!(&e, DataError::MissingRoot { path } if path == &missing));
    assert!(e.to_string().contains("nope"), "{e}");
    let e = open_err(tmp.path());
    assert!(matches!(&e, DataError::MissingSplit { path } if path.ends_with("training/frames")), "{e}");
    // "frames" missing although the split folder exists.
    fs::create_dir_all(tmp.path().join("training")).unwrap();
    assert!(matches!(open_err(tmp.path()), DataError::MissingSplit { .. }));
}

#[test]
fn error_no_clips_and_empty_clip() {
    let tmp = tempfile::tempdir().unwrap();
    let frames = tmp.path().join("training/frames");
    fs::create_dir_all(&frames).unwrap();
    fs::write(frames.join("stray.png"), b"x").unwrap();
    assert!(matches!(open_err(tmp.path()), DataError::NoClips { .. }));
    let dir = frames.join("07");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("000.bmp"), b"x").unwrap();
    fs::write(dir.join("info.txt"), b"x").unwrap();
    let e = open_err(tmp.path());
    assert!(matches!(&e, DataError::EmptyClip { clip, .. } if clip == "07"), "{e}");
    assert!(e.to_string().contains("07"));
}

#[test]
fn error_too_few_frames() {
    let tmp = tempfile::tempdir().unwrap();
    make_clip(tmp.path(), "training", "01", 5);
    make_clip(tmp.path(), "training", "02", 4);
    let e = open_err(tmp.path());
    assert!(matches!(&e, DataError::TooFewFrames { clip, frames: 4, .. } if clip == "02"), "{e}");
    assert!(e.to_string().contains("02") && e.to_string().contains("4 frames"), "{e}");
}

#[test]
fn error_duplicate_frame_number() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_clip(tmp.path(), "training", "01", 6);
    gray_png(&dir.join("3.png"), 6, 4, 0);
    let e = open_err(tmp.path());
    assert!(matches!(&e, DataError::DuplicateFrame { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("003.png") && msg.contains("3.png"), "{msg}");
}

#[test]
fn error_mixed_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_clip(tmp.path(), "training", "01", 6);
    gray_png(&dir.join("004.png"), 7, 4, 0);
    // Another clip of a different (but uniform) size is fine.
    let other = tmp.path().join("training/frames/00");
    fs::create_dir_all(&other).unwrap();
    for k in 0..5 {
        gray_png(&other.join(format!("{k}.png")), 12, 8, 0);
    }
    let e = open_err(tmp.path());
    match &e {
        DataError::MixedSizes { clip, first_width: 6, first_height: 4, width: 7, height: 4, path, first_path } => {
            assert_eq!(clip, "01");
            assert!(path.ends_with("004.png") && first_path.ends_with("000.png"));
        }
        other => panic!("unexpected {other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("004.png") && msg.contains("000.png") && msg.contains("6x4") && msg.contains("7x4"), "{msg}");
}

#[test]
fn error_corrupt_and_truncated_images() {
    // Garbage with an image extension.
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_clip(tmp.path(), "training", "01", 6);
    fs::write(dir.join("002.png"), b"definitely not a png").unwrap();
    let e = open_err(tmp.path());
    assert!(matches!(&e, DataError::Decode { path, .. } if path.ends_with("002.png")), "{e}");
    assert!(e.to_string().contains("002.png"));

    // A PNG cut in half.
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_clip(tmp.path(), "training", "01", 6);
    let p = dir.join("003.png");
    let full = fs::read(&p).unwrap();
    fs::write(&p, &full[..full.len() / 2]).unwrap();
    let e = open_err(tmp.path());
    assert!(matches!(&e, DataError::Decode { path, .. } if path.ends_with("003.png")), "{e}");

    // A JPEG cut short.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("training/frames/01");
    fs::create_dir_all(&dir).unwrap();
    for k in 0..5 {
        let img = GrayImage::from_fn(64, 48, |x, y| Luma([((x * 7 + y * 13 + k) % 256) as u8]));
        img.save(dir.join(format!("{k}.jpg"))).unwrap();
    }
    assert!(Dataset::open(tmp.path(), "training", &GRAY_SMALL).is_ok());
    let p = dir.join("1.jpg");
    let full = fs::read(&p).unwrap();
    fs::write(&p, &full[..full.len() * 2 / 3]).unwrap();
    let e = open_err(tmp.path());
    assert!(matches!(&e, DataError::Decode { path, .. } if path.ends_with("1.jpg")), "{e}");
    // An empty file.
    fs::write(&p, b"").unwrap();
    assert!(matches!(open_err(tmp.path()), DataError::Decode { .. }));
}

#[test]
fn error_bad_format() {
    let tmp = tempfile::tempdir().unwrap();
    make_clip(tmp.path(), "training", "01", 5);
    for f in [FrameFormat { height: 0, width: 4, channels: 1 }, FrameFormat { height: 4, width: 0, channels: 1 }, FrameFormat { height: 4, width: 4, channels: 2 }] {
        assert!(matches!(Dataset::open(tmp.path(), "training", &f), Err(DataError::BadFormat { .. })));
    }
}

fn write_labels(root: &Path, text: &str) {
    fs::create_dir_all(root.join("testing")).unwrap();
    fs::write(root.join("testing/labels.json"), text).unwrap();
}

#[test]
fn labels_load_and_check() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_clip(root, "testing", "01", 5);
    make_clip(root, "testing", "03", 6);
    let ds = Dataset::open(root, "testing", &GRAY_SMALL).unwrap();

    let e = load_labels(root).unwrap_err();
    assert!(matches!(&e, DataError::LabelsMissing { path } if path.ends_with("testing/labels.json")), "{e}");

    write_labels(root, r#"{"01": [0,0,1,1,0], "03": [0,0,0,1,1,1], "99": [1]}"#);
    let labels = load_labels(root).unwrap();
    assert_eq!(labels["01"], vec![0, 0, 1, 1, 0]);
    ds.check_labels(&labels).unwrap();

    // Wrong length: names the clip and both lengths.
    write_labels(root, r#"{"01": [0,0,1,1,0], "03": [0,0,0,1,1]}"#);
    let e = ds.check_labels(&load_labels(root).unwrap()).unwrap_err();
    assert!(matches!(&e, DataError::LabelsLength { clip, labels: 5, frames: 6 } if clip == "03"), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("03") && msg.contains('5') && msg.contains('6'), "{msg}");

    // Missing clip.
    write_labels(root, r#"{"01": [0,0,1,1,0]}"#);
    let e = ds.check_labels(&load_labels(root).unwrap()).unwrap_err();
    assert!(matches!(&e, DataError::LabelsMissingClip { clip } if clip == "03"), "{e}");

    // In-memory value other than 0/1.
    let mut bad = labels.clone();
    bad.get_mut("03").unwrap()[2] = 2;
    let e = ds.check_labels(&bad).unwrap_err();
    assert!(matches!(e, DataError::LabelValue { index: 2, value: 2, .. }));
}

#[test]
fn labels_malformed_or_bad_values() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for text in ["", "{", "[0, 1]", r#"{"01": "0101"}"#, r#"{"01": [0, 1}"#] {
        write_labels(root, text);
        let e = load_labels(root).unwrap_err();
        assert!(matches!(e, DataError::LabelsMalformed { .. }), "{text}: {e}");
        assert!(e.to_string().contains("labels.json"));
    }
    for (text, index) in [(r#"{"01": [0, 2]}"#, 1), (r#"{"01": [0, 1, -1]}"#, 2), (r#"{"01": [0.5]}"#, 0), (r#"{"01": [0, true]}"#, 1), (r#"{"01": [0, null]}"#, 1)] {
        write_labels(root, text);
        let e = load_labels(root).unwrap_err();
        assert!(matches!(&e, DataError::LabelValueInFile { clip, index: i, .. } if clip == "01" && *i == index), "{text}: {e}");
    }
}

/// The real Ped2 test split (skipped, with a message, when the data is not there).
#[test]
fn ped2_testing_split() {
    let root = match std::env::var_os("SFN_DATA") {
        Some(p) => PathBuf::from(p),
        None => {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ped2");
            if !p.is_dir() {
                println!("skipping ped2_testing_split: {} not found and SFN_DATA not set", p.display());
                return;
            }
            p
        }
    };
    let format = FrameFormat { height: 60, width: 90, channels: 1 };
    let start = Instant::now();
    let ds = Dataset::open(&root, "testing", &format).unwrap();
    let secs = start.elapsed().as_secs_f32();
    let names: Vec<&str> = ds.clips.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["01", "03", "04", "05", "06", "08", "09", "11"]);
    assert_eq!(ds.num_frames(), 1320);
    assert!(ds.clips.iter().all(|c| c.frames.iter().all(|f| f.len() == 60 * 90)));
    assert!(ds.clips[0].paths[0].ends_with("000.jpg"));
    let labels = load_labels(&root).unwrap();
    ds.check_labels(&labels).unwrap();
    assert_eq!(ds.windows().len(), 1320 - 8 * INPUT_FRAMES);
    let all: Vec<f32> = ds.clips.iter().flat_map(|c| c.frames.iter().flatten().copied()).collect();
    let (lo, hi) = all.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo >= -1.0 && hi <= 1.0 && hi - lo > 0.5, "range {lo}..{hi}");
    println!("ped2 testing: {} frames in {secs:.2} s", ds.num_frames());
}
