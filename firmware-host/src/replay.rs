//! `sfn-host replay`: recorded clips through the edge runtime itself (the same `sfn-edge` code, the same
//! causal scoring, the same packets), then the report a device's output would give against labels.
//!
//! Inputs: a dataset root in the common layout (`ROOT/testing/frames/<clip>/`, labels in
//! `ROOT/testing/labels.json`), or clip folders of frames given one by one. Packet timestamps are
//! `start_ms + index * 1000 / fps` (default start 0), so a replay is deterministic: the same clip gives
//! bit-identical packets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sfn_edge::alarm::AlarmConfig;
use sfn_edge::pipeline::{FrameOutput, Pipeline};
use sfn_edge::runtime::Runtime;
use sfn_edge::sink::FramedWriter;
use sfn_infer::BackendKind;
use sfn_sources::{ImageFolder, ImageFolderOptions};

use crate::validate::{self, ClipTrace, Validation};

/// Errors of replay and validation; each names the input.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Pipeline(#[from] sfn_edge::pipeline::PipelineError),
    #[error(transparent)]
    Run(#[from] sfn_edge::runtime::RunError),
    #[error(transparent)]
    Source(#[from] sfn_sources::SourceError),
}

/// What to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Export directory (model.json + ONNX).
    pub model: PathBuf,
    /// A dataset root, or clip folders.
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub backend: BackendKind,
    pub alarm: AlarmConfig,
    /// Timestamp of every clip's frame 0 (ms since the epoch) and the frame rate of the timestamps.
    pub start_ms: u64,
    pub fps: f64,
    /// Alarm snapshots as the device takes them, into `OUT/events/` (the clip's name as the device),
    /// and a contact sheet per clip in `OUT/contact/`.
    pub snapshots: Option<sfn_edge::snapshot::SnapshotConfig>,
}

/// File extensions read as video clips (needs the `video` feature to decode).
pub use sfn_data::video::VIDEO_EXTENSIONS;

/// One clip to replay.
#[derive(Clone, Debug)]
pub struct ClipInput {
    pub name: String,
    /// A folder of frames, or a video file.
    pub dir: PathBuf,
}

/// Frame labels per clip.
pub type Labels = BTreeMap<String, Vec<u8>>;

/// The clip folders in `dir` (hidden ones left out), sorted by name.
pub fn clip_dirs(dir: &Path) -> Result<Vec<PathBuf>, HostError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| HostError::Io { path: dir.into(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Clips and labels of the inputs.
pub fn discover(inputs: &[PathBuf]) -> Result<(Vec<ClipInput>, Option<Labels>), HostError> {
    let mut clips = Vec::new();
    let mut labels = None;
    for input in inputs {
        let frames = input.join("testing/frames");
        if frames.is_dir() {
            let dirs = clip_dirs(&frames)?;
            if dirs.is_empty() {
                return Err(HostError::Input { path: frames, reason: "no clip folders".into() });
            }
            clips.extend(dirs.into_iter().map(|d| ClipInput { name: d.file_name().unwrap_or_default().to_string_lossy().into_owned(), dir: d }));
            let lp = input.join("testing/labels.json");
            if lp.exists() {
                let text = std::fs::read_to_string(&lp).map_err(|source| HostError::Io { path: lp.clone(), source })?;
                let l: BTreeMap<String, Vec<u8>> = serde_json::from_str(&text).map_err(|e| HostError::Input { path: lp.clone(), reason: format!("labels: {e}") })?;
                labels.get_or_insert_with(BTreeMap::new).extend(l);
            }
        } else if input.is_dir() {
            clips.push(ClipInput { name: input.file_name().unwrap_or_default().to_string_lossy().into_owned(), dir: input.clone() });
        } else if sfn_data::video::is_video_file(input) {
            clips.push(ClipInput { name: input.file_stem().unwrap_or_default().to_string_lossy().into_owned(), dir: input.clone() });
        } else {
            return Err(HostError::Input { path: input.clone(), reason: "not a dataset root (ROOT/testing/frames/<clip>/), a folder of frames, nor a video file (.mp4 .avi .mkv .mov)".into() });
        }
    }
    Ok((clips, labels))
}

/// Replays one clip through a fresh runtime; packets go to `packets` (COBS-framed). Returns the outputs.
pub fn replay_clip(opts: &ReplayOptions, clip: &ClipInput, packets: &Path) -> Result<Vec<FrameOutput>, HostError> {
    let pipeline = Pipeline::open(&opts.model, &opts.backend, opts.alarm.clone())?;
    if pipeline.uses_text() {
        return Err(HostError::Input {
            path: opts.model.clone(),
            reason:
                "the model reads captions; replay runs models without the semantic branch (captions are refreshed on a wall-clock budget on the device, which a deterministic replay cannot reproduce)"
                    .into(),
        });
    }
    let mut rt = Runtime::new(pipeline, &clip.name);
    rt.health_period = std::time::Duration::from_secs(3600);
    rt.sinks.push(Box::new(FramedWriter::file(packets).map_err(|e| HostError::Input { path: packets.into(), reason: e.to_string() })?));
    let seen: Arc<Mutex<Vec<FrameOutput>>> = Arc::default();
    let s2 = seen.clone();
    rt.on_frame = Some(Box::new(move |o| s2.lock().expect("not poisoned").push(o.clone())));
    let mut src: Box<dyn sfn_sources::FrameSource> = if clip.dir.is_file() {
        video_source(clip, opts)?
    } else {
        Box::new(ImageFolder::open(&clip.dir, ImageFolderOptions { fps: Some(opts.fps), start_time_ms: Some(opts.start_ms), ..Default::default() })?)
    };
    if let Some(sc) = &opts.snapshots {
        let sc = sfn_edge::snapshot::SnapshotConfig { dir: Some(opts.out.join("events")), mqtt: false, ..sc.clone() };
        rt.snapshots = Some(sfn_edge::snapshot::Snapshots::start(sc, &clip.name, None).map_err(|source| HostError::Io { path: opts.out.join("events"), source })?);
    }
    rt.run(&mut src, None, 1)?;
    if let Some(st) = rt.close_snapshots(std::time::Duration::from_secs(120)) {
        if st.disk_errors > 0 || st.dropped > 0 {
            tracing::warn!(clip = %clip.name, ?st, "some snapshots were not written");
        }
    }
    drop(rt);
    let out = std::mem::take(&mut *seen.lock().expect("not poisoned"));
    Ok(out)
}

#[cfg(feature = "video")]
fn video_source(clip: &ClipInput, opts: &ReplayOptions) -> Result<Box<dyn sfn_sources::FrameSource>, HostError> {
    // Timestamps follow the file's own frame rate.
    Ok(Box::new(sfn_sources::VideoFile::open(&clip.dir, sfn_sources::VideoFileOptions { start_time_ms: Some(opts.start_ms), ..Default::default() })?))
}

#[cfg(not(feature = "video"))]
fn video_source(clip: &ClipInput, _opts: &ReplayOptions) -> Result<Box<dyn sfn_sources::FrameSource>, HostError> {
    Err(HostError::Input { path: clip.dir.clone(), reason: "video files need a build with the `video` feature (FFmpeg): cargo build -p sfn-host --features video".into() })
}

/// The replay report (`OUT/report.json`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReplayReport {
    pub model: String,
    pub clips: Vec<String>,
    pub frames_scored: usize,
    /// Scores, alarms and AUCs as the device would send them (causal), against labels where known.
    #[serde(flatten)]
    pub validation: Validation,
}

/// Replays every clip; writes `OUT/packets/<clip>.bin`, `OUT/report.json` and the plots in `OUT/plots/`.
pub fn replay(opts: &ReplayOptions) -> Result<ReplayReport, HostError> {
    let (clips, labels) = discover(&opts.inputs)?;
    let pdir = opts.out.join("packets");
    std::fs::create_dir_all(&pdir).map_err(|source| HostError::Io { path: pdir.clone(), source })?;
    let mut traces = Vec::new();
    for clip in &clips {
        let outs = replay_clip(opts, clip, &pdir.join(format!("{}.bin", clip.name)))?;
        let l = match &labels {
            Some(l) => Some(l.get(&clip.name).cloned().ok_or_else(|| HostError::Input { path: opts.inputs[0].join("testing/labels.json"), reason: format!("no labels for clip {}", clip.name) })?),
            None => None,
        };
        traces.push(ClipTrace::from_outputs(&clip.name, &outs, l.as_deref()).map_err(|reason| HostError::Input { path: clip.dir.clone(), reason })?);
    }
    // The saturated offline scoring needs the calibration's cap (the pipeline has already read model.json).
    let z_cap = sfn_infer::manifest::Manifest::read(&opts.model).ok().and_then(|m| m.calibration).and_then(|c| c.visual_z_max);
    let validation = validate::validate(&traces, opts.fps, opts.alarm.raise_after, z_cap);
    let report =
        ReplayReport { model: opts.model.display().to_string(), clips: clips.iter().map(|c| c.name.clone()).collect(), frames_scored: traces.iter().map(|t| t.frames.len()).sum(), validation };
    let path = opts.out.join("report.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| HostError::Input { path: path.clone(), reason: e.to_string() })?;
    // Atomically: a reader never sees half a report.
    sfn_fsio::write_atomic(&path, text.as_bytes()).map_err(|e| HostError::Input { path: path.clone(), reason: e.to_string() })?;
    validate::plots(&traces, &report.validation, &opts.out.join("plots")).map_err(|reason| HostError::Input { path: opts.out.join("plots"), reason })?;
    if opts.snapshots.is_some() {
        let dir = opts.out.join("contact");
        for (t, clip) in traces.iter().zip(&clips) {
            let frames = clip.dir.is_dir().then_some(clip.dir.as_path());
            crate::contact::contact_sheet(t, Some(&opts.out.join("events")), frames, &dir).map_err(|reason| HostError::Input { path: dir.clone(), reason })?;
        }
    }
    Ok(report)
}
