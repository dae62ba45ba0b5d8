//! Splits given as video files: the synthetic walkway encoded to a video by the `ffmpeg` CLI (installed
//! by scripts/setup.sh) loads as the same frames as its frames extracted losslessly (PNG) into the
//! folder layout, bit for bit, so everything computed from them (calibration, evaluation) is the same;
//! labels are keyed by the file stem; bad videos are named.
#![cfg(feature = "video")]

use std::path::Path;
use std::process::Command;

use sfn_data::dataset::{load_labels, DataError, Dataset, FrameFormat};
use sfn_data::synth::{write_walkway, SynthConfig};
use sfn_sources::{FrameSource, VideoFile, VideoFileOptions};

fn encode(frames: &Path, out: &Path) {
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-framerate", "10", "-i"])
        .arg(frames.join("%03d.png"))
        .args(["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"])
        .arg(out)
        .status()
        .expect("ffmpeg CLI: run scripts/setup.sh");
    assert!(st.success());
}

#[test]
fn a_split_of_videos_loads_the_frames_its_extraction_would() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = tmp.path().join("synth");
    write_walkway(&synth, &SynthConfig { train_clips: 2, test_clips: 1, frames_per_clip: 12, ..Default::default() }).unwrap();
    let videos = tmp.path().join("videos");
    let extracted = tmp.path().join("extracted");
    for split in ["training", "testing"] {
        std::fs::create_dir_all(videos.join(split)).unwrap();
        for clip in std::fs::read_dir(synth.join(split).join("frames")).unwrap() {
            let clip = clip.unwrap().path();
            let name = clip.file_name().unwrap().to_string_lossy().into_owned();
            let video = videos.join(split).join(format!("{name}.mp4"));
            encode(&clip, &video);
            // The frames the edge would see, written losslessly into the folder layout.
            let dir = extracted.join(split).join("frames").join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            let mut src = VideoFile::open(&video, VideoFileOptions::default()).unwrap();
            while let Some(f) = src.next_frame().unwrap() {
                f.image.save(dir.join(format!("{:03}.png", f.index))).unwrap();
            }
        }
    }
    std::fs::copy(synth.join("testing/labels.json"), videos.join("testing/labels.json")).unwrap();
    for fmt in [FrameFormat { height: 32, width: 48, channels: 1 }, FrameFormat { height: 24, width: 40, channels: 3 }] {
        for split in ["training", "testing"] {
            let a = Dataset::open(&videos, split, &fmt).unwrap();
            let b = Dataset::open(&extracted, split, &fmt).unwrap();
            assert_eq!(a.clips.len(), b.clips.len());
            for (x, y) in a.clips.iter().zip(&b.clips) {
                assert_eq!(x.name, y.name);
                assert_eq!(x.frames.len(), 12);
                assert!(x.frames == y.frames, "clip {} differs", x.name);
            }
        }
    }
    // Labels keyed by the video's stem fit its frames.
    let test = Dataset::open(&videos, "testing", &FrameFormat { height: 32, width: 48, channels: 1 }).unwrap();
    test.check_labels(&load_labels(&videos).unwrap()).unwrap();

    // Mixed sizes across videos: refused, both named.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("training")).unwrap();
    std::fs::copy(videos.join("training/01.mp4"), other.join("training/01.mp4")).unwrap();
    let st =
        Command::new("ffmpeg").args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1", "-c:v", "mpeg4"]).arg(other.join("training/02.mp4")).status().unwrap();
    assert!(st.success());
    let e = Dataset::open(&other, "training", &FrameFormat { height: 32, width: 48, channels: 1 }).unwrap_err();
    assert!(matches!(e, DataError::MixedSizes { .. }) && e.to_string().contains("01.mp4") && e.to_string().contains("02.mp4"), "{e}");
    // Not a video: named.
    std::fs::write(other.join("training/02.mp4"), b"not a video").unwrap();
    let e = Dataset::open(&other, "training", &FrameFormat { height: 32, width: 48, channels: 1 }).unwrap_err();
    assert!(e.to_string().contains("02.mp4"), "{e}");
}
