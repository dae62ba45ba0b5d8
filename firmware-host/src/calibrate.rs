//! `sfn-host calibrate`: refits the causal calibration of an ONNX export on a scene's own normal
//! footage by running the export itself (no candle checkpoint needed), and writes an export whose
//! `model.json` carries it.
//!
//! The fit is [`sfn_scoring::fit_calibration_joined`], the one `sfn-train calibrate` runs on the candle
//! model's predictions: region statistics of the error boxes, the speed cue's statistics, the z
//! constants (the appearance cue's too, where the export joins it). The settings (pooling, sigma,
//! weights, speed cue, appearance cue) are the export's current ones.

use std::path::{Path, PathBuf};

use sfn_infer::{BackendKind, ExportedModel};
use sfn_scoring::{error_summary, fit_calibration_joined, CalibrationSettings, CausalCalibration};
use sfn_sources::{FrameSource, ImageFolder, ImageFolderOptions};

use crate::replay::{clip_dirs, HostError};

/// What to calibrate on.
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    /// Export directory (model.json + ONNX).
    pub model: PathBuf,
    /// Normal footage: dataset roots (their `training/frames/<clip>/`), folders of clip folders, or
    /// clip folders of frames.
    pub inputs: Vec<PathBuf>,
    /// Where the recalibrated export goes (the export itself when None: its model.json is replaced).
    pub out: Option<PathBuf>,
    pub backend: BackendKind,
}

/// What the calibration was fitted on.
#[derive(Clone, Debug)]
pub struct CalibrateReport {
    pub calibration: CausalCalibration,
    pub clips: Vec<String>,
    pub frames: usize,
    /// model.json written.
    pub manifest: PathBuf,
}

/// Clips of normal footage in `inputs` (see [`CalibrateOptions::inputs`]), in order: folders of
/// frames, and video files (`.mp4 .avi .mkv .mov`, read with the `video` feature) given directly or
/// lying in a dataset root's `training/`.
pub fn normal_clips(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, HostError> {
    use sfn_data::video::{is_video_file, video_files};
    let mut clips = Vec::new();
    for input in inputs {
        let training = input.join("training/frames");
        let training_videos = video_files(&input.join("training"));
        if training.is_dir() {
            clips.extend(clip_dirs(&training)?);
        } else if !training_videos.is_empty() {
            clips.extend(training_videos);
        } else if input.is_dir() {
            let sub = clip_dirs(input)?;
            let videos = video_files(input);
            if sub.is_empty() && videos.is_empty() {
                clips.push(input.clone());
            } else {
                clips.extend(sub);
                clips.extend(videos);
            }
        } else if is_video_file(input) {
            clips.push(input.clone());
        } else {
            return Err(HostError::Input {
                path: input.clone(),
                reason: "not a dataset root (ROOT/training/frames/<clip>/ or ROOT/training/*.mp4), a folder of clip folders or videos, a folder of frames, nor a video file".into(),
            });
        }
    }
    if clips.is_empty() {
        return Err(HostError::Input { path: inputs.first().cloned().unwrap_or_default(), reason: "no clip folders".into() });
    }
    Ok(clips)
}

/// A clip's name: its folder's name, or a video file's stem.
pub fn clip_name(clip: &Path) -> String {
    if clip.is_file() { clip.file_stem() } else { clip.file_name() }.unwrap_or_default().to_string_lossy().into_owned()
}

/// Fits the calibration on the footage and writes the recalibrated export. Everything is computed
/// before anything is written: bad footage (a clip without enough frames, a frame of another size
/// than its clip's first, an unreadable frame) is refused by name and leaves no file behind.
pub fn calibrate(opts: &CalibrateOptions) -> Result<CalibrateReport, HostError> {
    let mut model = ExportedModel::open(&opts.model, &opts.backend).map_err(|e| HostError::Input { path: opts.model.clone(), reason: e.to_string() })?;
    let manifest_path = opts.model.join(sfn_infer::manifest::MANIFEST);
    if model.manifest.text.is_some() {
        return Err(HostError::Input { path: manifest_path, reason: "the model reads captions; calibrating its semantic stream needs the caption stage (use sfn-train calibrate)".into() });
    }
    let old = model.manifest.calibration.clone().ok_or_else(|| HostError::Input { path: manifest_path.clone(), reason: "no causal calibration to take the settings from".into() })?;
    let settings = CalibrationSettings::of(&old);
    let (n, img) = (model.manifest.window, model.manifest.image.clone());
    let (c, h, w) = (img.channels, img.height, img.width);
    let clips = normal_clips(&opts.inputs)?;
    let (mut errors, mut speed, mut appearance) = (Vec::new(), Vec::new(), Vec::new());
    let mut clip_frames = Vec::new();
    let mut names = Vec::new();
    for dir in &clips {
        let name = clip_name(dir);
        let bad = |reason: String| HostError::Input { path: dir.clone(), reason: format!("clip {name}: {reason}") };
        let frames = read_clip(dir, c, h, w).map_err(&bad)?;
        if frames.len() < n + 1 {
            return Err(bad(format!("{} frames; at least {} are needed ({n} inputs + 1 target)", frames.len(), n + 1)));
        }
        let mut enc = Vec::with_capacity(frames.len());
        for (t, f) in frames.iter().enumerate() {
            let prev = if t == 0 { f } else { &frames[t - 1] };
            enc.push(model.encode(f, prev, 1).map_err(|e| bad(format!("frame {t}: {e}")))?);
        }
        for t in n..frames.len() {
            let win = &enc[t - n..t];
            let tokens: Vec<f32> = win.iter().flat_map(|e| e.tokens.data.iter().copied()).collect();
            let motion: Vec<f32> = win.iter().skip(1).flat_map(|e| e.motion.data.iter().copied()).collect();
            let d = model.decode(&tokens, &win[n - 1].patch_embed.data, &motion, None, &frames[t - 1], Some(&frames[t - 2]), 1).map_err(|e| bad(format!("frame {t}: {e}")))?;
            let map = settings.pooling.map(&d.frame.data, &frames[t], &frames[t - 1], c, h, w).map_err(|e| bad(format!("frame {t}: {e}")))?;
            errors.push(error_summary(settings.pooling, &map, h, w).map_err(|e| bad(format!("frame {t}: {e}")))?);
            if let Some(cue) = &settings.speed {
                speed.push(cue.box_means(&frames[t - 1], &frames[t], c, h, w).map_err(|e| bad(format!("frame {t}: {e}")))?);
            }
            if let Some(j) = &old.appearance {
                let boxes = j.boxes.describe(&frames[t - 1], &frames[t], c, h, w).map_err(|e| bad(format!("frame {t}: appearance: {e}")))?;
                let flat: Vec<f32> = boxes.iter().flat_map(|b| b.values.iter().copied()).collect();
                let box_errors = model.appearance_errors(&flat, boxes.len()).map_err(|e| bad(format!("frame {t}: {e}")))?;
                appearance.push(sfn_scoring::appearance_frame_error(&box_errors));
            }
        }
        names.push(name);
        clip_frames.push(frames.len() - n);
    }
    let fitting = |e: sfn_scoring::ScoringError| HostError::Input { path: opts.model.clone(), reason: format!("fitting the calibration: {e}") };
    // The appearance cue's z constants are refitted on this footage too (its weight kept).
    let joined = match &old.appearance {
        Some(j) => Some((j.boxes, sfn_scoring::AppearanceZ { weight: j.z.weight, ..sfn_scoring::AppearanceZ::fit(&appearance).map_err(fitting)? }, &appearance[..])),
        None => None,
    };
    let calibration = fit_calibration_joined(settings, h, w, &errors, &clip_frames, &speed, None, joined).map_err(fitting)?;
    let out = opts.out.clone().unwrap_or_else(|| opts.model.clone());
    let manifest = write_export(&opts.model, &out, &model.manifest, &calibration)?;
    Ok(CalibrateReport { calibration, clips: names, frames: errors.len(), manifest })
}

/// The frames of one clip (a folder of frames, or a video file) as model inputs; a frame of another
/// size than the first is refused.
fn read_clip(dir: &Path, c: usize, h: usize, w: usize) -> Result<Vec<Vec<f32>>, String> {
    let mut src: Box<dyn FrameSource> = if dir.is_file() { video(dir)? } else { Box::new(ImageFolder::open(dir, ImageFolderOptions::default()).map_err(|e| e.to_string())?) };
    let mut out = Vec::new();
    let mut size = None;
    while let Some(f) = src.next_frame().map_err(|e| e.to_string())? {
        let s = (f.image.width(), f.image.height());
        match size {
            None => size = Some(s),
            Some(first) if first != s => return Err(format!("frame {} is {}x{}, the clip's first frame {}x{}", f.index, s.0, s.1, first.0, first.1)),
            Some(_) => {}
        }
        out.push(sfn_infer::preprocess::to_model_input(&f.image, c, h, w));
    }
    Ok(out)
}

/// A video file read as the edge reads video sources.
#[cfg(feature = "video")]
fn video(path: &Path) -> Result<Box<dyn FrameSource>, String> {
    Ok(Box::new(sfn_sources::VideoFile::open(path, sfn_sources::VideoFileOptions::default()).map_err(|e| e.to_string())?))
}

#[cfg(not(feature = "video"))]
fn video(_path: &Path) -> Result<Box<dyn FrameSource>, String> {
    Err("video files need a build with the `video` feature (FFmpeg): cargo build -p sfn-host --features video".into())
}

/// `out` holds the export of `src` with `calibration` in its model.json: the ONNX files copied (when
/// `out` is another folder), model.json written last and atomically.
fn write_export(src: &Path, out: &Path, manifest: &sfn_infer::manifest::Manifest, calibration: &CausalCalibration) -> Result<PathBuf, HostError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HostError::Io { path, source }
    };
    if out != src {
        std::fs::create_dir_all(out).map_err(io(out))?;
        for file in [&manifest.encoder.file, &manifest.decoder.file].into_iter().chain(manifest.appearance.as_ref().map(|g| &g.file)) {
            let bytes = std::fs::read(src.join(file)).map_err(io(&src.join(file)))?;
            sfn_fsio::write_atomic(&out.join(file), &bytes).map_err(io(&out.join(file)))?;
        }
    }
    let mut m = manifest.clone();
    m.calibration = Some(calibration.clone());
    m.write(out).map_err(|e| HostError::Input { path: out.join(sfn_infer::manifest::MANIFEST), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_footage_may_be_video_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("scene");
        std::fs::create_dir_all(root.join("training")).unwrap();
        for f in ["b.mp4", "a.MKV", "notes.txt"] {
            std::fs::write(root.join("training").join(f), b"x").unwrap();
        }
        let clips = normal_clips(std::slice::from_ref(&root)).unwrap();
        assert_eq!(clips, [root.join("training/a.MKV"), root.join("training/b.mp4")]);
        assert_eq!(clip_name(&clips[1]), "b");
        assert_eq!(normal_clips(&[root.join("training/b.mp4")]).unwrap(), [root.join("training/b.mp4")]);
        let e = normal_clips(&[root.join("training/notes.txt")]).unwrap_err().to_string();
        assert!(e.contains("notes.txt"), "{e}");
        if !cfg!(feature = "video") {
            let e = read_clip(&clips[1], 1, 8, 8).unwrap_err();
            assert!(e.contains("`video` feature"), "{e}");
        }
    }
}
