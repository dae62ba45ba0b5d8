//! Splits given as video files (`<root>/<split>/*.{mp4,mkv,avi,mov}`, one clip per file, named by the
//! file's stem; `testing/labels.json` keyed by those stems), decoded with FFmpeg exactly as the edge
//! runtime decodes a video source (`sfn_sources::VideoFile`, RGB frames) and converted with the same
//! `sfn_infer::preprocess::to_model_input`: a split given as videos loads the very frames that its
//! frames, extracted losslessly, would. Needs the cargo feature `video`.

use std::path::{Path, PathBuf};

use crate::dataset::{Clip, DataError, FrameFormat};

/// File extensions read as video clips (compared case-insensitively).
pub const VIDEO_EXTENSIONS: [&str; 4] = ["mp4", "mkv", "avi", "mov"];

/// Whether `path` is a (non-hidden) file with a video extension.
pub fn is_video_file(path: &Path) -> bool {
    path.is_file()
        && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        && path.extension().and_then(|e| e.to_str()).is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The video files directly in `dir` ([`is_video_file`]), sorted by name.
pub fn video_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_video_file(p)).collect();
    files.sort();
    files
}

/// Every frame of every video in `files`, one clip per file. Frames of all videos must have one size
/// (a scene's camera); a video without a decodable frame, or shorter than one window, is refused by name.
#[cfg(feature = "video")]
pub fn video_clips(files: &[PathBuf], format: &FrameFormat) -> Result<Vec<Clip>, DataError> {
    use crate::dataset::WINDOW;
    use sfn_sources::{FrameSource, VideoFile, VideoFileOptions};
    let mut clips = Vec::with_capacity(files.len());
    let mut first: Option<(PathBuf, u32, u32)> = None;
    for file in files {
        let name = file.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let decode = |reason: String| DataError::Decode { path: file.clone(), reason };
        let mut src = VideoFile::open(file, VideoFileOptions::default()).map_err(|e| decode(e.to_string()))?;
        let (mut frames, mut paths) = (Vec::new(), Vec::new());
        while let Some(f) = src.next_frame().map_err(|e| decode(e.to_string()))? {
            let (w, h) = (f.image.width(), f.image.height());
            let at = file.with_file_name(format!("{}#frame{}", file.file_name().unwrap_or_default().to_string_lossy(), f.index));
            match &first {
                None => first = Some((at.clone(), w, h)),
                Some((fp, fw, fh)) if (*fw, *fh) != (w, h) => {
                    return Err(DataError::MixedSizes { clip: name, first_path: fp.clone(), first_width: *fw, first_height: *fh, path: at, width: w, height: h });
                }
                Some(_) => {}
            }
            frames.push(sfn_infer::preprocess::to_model_input(&f.image, format.channels, format.height, format.width));
            paths.push(at);
        }
        if frames.is_empty() {
            return Err(decode("no decodable frame".into()));
        }
        if frames.len() < WINDOW {
            return Err(DataError::TooFewFrames { clip: name, path: file.clone(), frames: frames.len() });
        }
        clips.push(Clip { name, frames, paths });
    }
    Ok(clips)
}

/// Without the `video` feature a split of videos is refused with the way to read it.
#[cfg(not(feature = "video"))]
pub fn video_clips(files: &[PathBuf], _format: &FrameFormat) -> Result<Vec<Clip>, DataError> {
    Err(DataError::Decode { path: files.first().cloned().unwrap_or_default(), reason: "video files need a build with the `video` feature (FFmpeg): --features video".into() })
}
