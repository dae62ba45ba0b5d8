use super::*;
use crate::dataset::{load_labels, Dataset, FrameFormat};
use std::fs;

fn small() -> SynthConfig {
    SynthConfig { train_clips: 2, test_clips: 3, frames_per_clip: 30, ..SynthConfig::default() }
}

/// Every file under `dir`, relative path -> bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = small();
    let sa = write_walkway(a.path(), &cfg).unwrap();
    let sb = write_walkway(b.path(), &cfg).unwrap();
    assert_eq!(sa, sb);
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    // 2 + 3 clips of 30 frames, labels, marker.
    assert_eq!(ta.len(), 5 * 30 + 2);
    assert!(ta == tb, "same config, different files");
    // Writing again over a synthetic dataset replaces it with the same bytes.
    write_walkway(a.path(), &cfg).unwrap();
    assert!(tree(a.path()) == tb);
    // Another seed gives other frames.
    let c = tempfile::tempdir().unwrap();
    write_walkway(c.path(), &SynthConfig { seed: 8, ..cfg }).unwrap();
    let tc = tree(c.path());
    let frame = Path::new("training/frames/01/000.png");
    assert_ne!(ta[frame], tc[frame]);
}

#[test]
fn labels_cover_both_classes_and_match_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SynthConfig::default();
    let s = write_walkway(tmp.path(), &cfg).unwrap();
    assert_eq!((s.train_clips, s.test_clips), (6, 3));
    assert_eq!((s.train_frames, s.test_frames), (6 * 60, 3 * 60));
    let labels = load_labels(tmp.path()).unwrap();
    assert_eq!(labels.len(), 3);
    let mut abnormal = 0;
    for (k, (clip, l)) in labels.iter().enumerate() {
        assert_eq!(l.len(), 60, "clip {clip}");
        let frames = fs::read_dir(tmp.path().join("testing/frames").join(clip)).unwrap().count();
        assert_eq!(frames, l.len(), "clip {clip}");
        // Normal, then one abnormal interval, then normal again (60 frames leave room).
        let first = l.iter().position(|&v| v == 1).unwrap();
        let last = l.iter().rposition(|&v| v == 1).unwrap();
        assert!(first >= WINDOW && last + 1 < l.len(), "clip {clip}: {l:?}");
        assert!(l[first..=last].iter().all(|&v| v == 1), "clip {clip}: {l:?}");
        assert!(last - first >= 5, "clip {clip}: {l:?}");
        let span = &s.intruders[k];
        assert_eq!((&span.clip, span.first_frame, span.last_frame), (clip, first, last));
        abnormal += l.iter().filter(|&&v| v == 1).count();
    }
    assert_eq!(abnormal, s.abnormal_frames);
    // Both kinds of intruder appear.
    assert_eq!(s.intruders[0].kind, "cart");
    assert_eq!(s.intruders[1].kind, "cyclist");
    // Even the shortest clips hold both classes among the scored frames (4 onwards).
    let tmp = tempfile::tempdir().unwrap();
    let short = SynthConfig { frames_per_clip: MIN_FRAMES, test_clips: 4, ..SynthConfig::default() };
    write_walkway(tmp.path(), &short).unwrap();
    for (clip, l) in load_labels(tmp.path()).unwrap() {
        assert!(l[4..].contains(&0) && l[4..].contains(&1), "clip {clip}: {l:?}");
    }
}

/// Mean absolute difference between consecutive frames, per frame (entry 0 is 0).
fn frame_diffs(ds: &Dataset, clip: usize) -> Vec<f32> {
    let f = &ds.clips[clip].frames;
    let mut out = vec![0.0];
    for t in 1..f.len() {
        let d: f32 = f[t].iter().zip(&f[t - 1]).map(|(a, b)| (a - b).abs()).sum();
        out.push(d / f[t].len() as f32);
    }
    out
}

#[test]
fn intruder_moves_more_than_walkers() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SynthConfig::default();
    write_walkway(tmp.path(), &cfg).unwrap();
    let native = FrameFormat { height: cfg.height, width: cfg.width, channels: 1 };
    let ds = Dataset::open(tmp.path(), "testing", &native).unwrap();
    let labels = load_labels(tmp.path()).unwrap();
    for (c, clip) in ds.clips.iter().enumerate() {
        let l = &labels[&clip.name];
        let d = frame_diffs(&ds, c);
        let mean = |keep: &dyn Fn(usize) -> bool| {
            let v: Vec<f32> = (1..d.len()).filter(|&t| keep(t)).map(|t| d[t]).collect();
            v.iter().sum::<f32>() / v.len() as f32
        };
        let abnormal = mean(&|t| l[t] == 1);
        let normal = mean(&|t| l[t] == 0 && l[t - 1] == 0);
        assert!(abnormal > 1.4 * normal, "clip {}: mean frame difference {abnormal} with the intruder, {normal} without", clip.name);
    }
    // The training clips (walkers only) move like the normal test frames.
    let train = Dataset::open(tmp.path(), "training", &native).unwrap();
    let d = frame_diffs(&train, 0);
    let m = d[1..].iter().sum::<f32>() / (d.len() - 1) as f32;
    assert!(m > 0.0 && m < 0.05, "{m}");
}

#[test]
fn dataset_reader_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small();
    write_walkway(tmp.path(), &cfg).unwrap();
    let tiny = FrameFormat { height: 32, width: 48, channels: 1 };
    let train = Dataset::open(tmp.path(), "training", &tiny).unwrap();
    assert_eq!(train.clips.len(), 2);
    assert_eq!(train.num_frames(), 60);
    assert_eq!(train.clips[0].name, "01");
    assert!(train.clips[0].paths[0].ends_with("000.png"));
    let test = Dataset::open(tmp.path(), "testing", &tiny).unwrap();
    assert_eq!(test.clips.len(), 3);
    test.check_labels(&load_labels(tmp.path()).unwrap()).unwrap();
    // Walkway, grass and walkers give a real spread of gray levels.
    let f = &train.clips[0].frames[0];
    let (lo, hi) = f.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo < -0.1 && hi > 0.4, "{lo}..{hi}");
}

#[test]
fn refuses_foreign_folders_and_bad_configs() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
    let e = write_walkway(tmp.path(), &small()).unwrap_err();
    assert!(matches!(e, SynthError::NotEmpty { .. }), "{e}");
    assert!(e.to_string().contains(&tmp.path().display().to_string()), "{e}");
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing may be written");
    // A marker from someone else does not count.
    fs::write(tmp.path().join(MARKER), br#"{"generator": "other"}"#).unwrap();
    assert!(matches!(write_walkway(tmp.path(), &small()), Err(SynthError::NotEmpty { .. })));
    // A file as root.
    let file = tmp.path().join("notes.txt");
    assert!(matches!(write_walkway(&file, &small()), Err(SynthError::NotADir { .. })));
    // A root that cannot be created names itself.
    let below = file.join("sub");
    let e = write_walkway(&below, &small()).unwrap_err();
    assert!(matches!(&e, SynthError::Io { path, .. } if path == &below), "{e}");
    for cfg in [SynthConfig { height: 8, ..small() }, SynthConfig { frames_per_clip: 7, ..small() }, SynthConfig { test_clips: 0, ..small() }, SynthConfig { noise_std: f32::NAN, ..small() }] {
        assert!(matches!(write_walkway(&tmp.path().join("x"), &cfg), Err(SynthError::Config { .. })));
    }
    assert!(!tmp.path().join("x").exists());
    // JSON configs may leave fields out.
    let cfg: SynthConfig = serde_json::from_str(r#"{"seed": 3}"#).unwrap();
    assert_eq!(cfg, SynthConfig { seed: 3, ..SynthConfig::default() });
}
