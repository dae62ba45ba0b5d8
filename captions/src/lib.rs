//! Captions of 4-frame clips for SFN-VAD's semantic branch, behind one trait ([`CaptionProvider`]):
//!
//! - [`openai::OpenAiCaptions`]: an OpenAI-compatible chat-completions endpoint with images (llama.cpp's
//!   server, Ollama, vLLM serving a VLM such as InternVL2.5-1B), the paper's prompt, greedy decoding,
//!   timeout and retries;
//! - [`jsonl::JsonlCaptions`]: captions made offline by any pipeline, one JSON object per line
//!   `{"clip": "01", "frame": 17, "caption": "..."}` (`frame` = index of the clip's last frame);
//! - [`describe::MotionDescriber`]: runs here with no model at all: moving regions measured in the clip
//!   (size, position, speed, direction) rendered as sentences.
//!
//! [`Fallback`] turns provider errors into a logged, counted reuse of the last good caption.

pub mod describe;
pub mod jsonl;
pub mod openai;

use std::path::PathBuf;

/// The paper's captioning prompt.
pub const PAPER_PROMPT: &str = "Describe the scene in the video segment, what objects are present, and what is each person doing?";

/// Frames per captioned clip.
pub const CLIP_FRAMES: usize = 4;

/// A 4-frame clip to caption: frames t-3..t, CHW f32 in [-1, 1] (the trainer's normalisation).
#[derive(Clone, Copy, Debug)]
pub struct Clip<'a> {
    /// Clip (video) name.
    pub clip: &'a str,
    /// Index of the last frame t within the video.
    pub frame: usize,
    /// The 4 frames, oldest first, each `channels * height * width` values.
    pub frames: [&'a [f32]; CLIP_FRAMES],
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// Errors of caption providers; each names the endpoint, file, clip or frame concerned.
#[derive(Debug, thiserror::Error)]
pub enum CaptionError {
    #[error("{endpoint}: unreachable: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("{endpoint}: HTTP {status}: {body}")]
    Http { endpoint: String, status: u16, body: String },
    #[error("{endpoint}: no reply within {seconds} s")]
    Timeout { endpoint: String, seconds: f64 },
    #[error("{source_name}: malformed reply: {reason}")]
    Malformed { source_name: String, reason: String },
    #[error("{source_name}: empty caption for clip {clip} frame {frame}")]
    Empty { source_name: String, clip: String, frame: usize },
    #[error("{path}: no caption for clip {clip} frame {frame}")]
    Missing { path: PathBuf, clip: String, frame: usize },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {reason}")]
    Parse { path: PathBuf, line: usize, reason: String },
    #[error("clip {clip} frame {frame}: {reason}")]
    BadClip { clip: String, frame: usize, reason: String },
}

/// Something that captions 4-frame clips.
pub trait CaptionProvider: Send {
    /// Name for logs and cache files (e.g. "motion-describer v1", "openai:http://host/v1 model").
    fn name(&self) -> String;
    /// The caption of `clip`, non-empty.
    fn caption(&mut self, clip: &Clip) -> Result<String, CaptionError>;
}

/// Checks a clip's frame sizes (providers call this first).
pub fn check_clip(clip: &Clip) -> Result<(), CaptionError> {
    let n = clip.channels * clip.height * clip.width;
    if n == 0 {
        return Err(CaptionError::BadClip { clip: clip.clip.into(), frame: clip.frame, reason: "frame size is zero".into() });
    }
    for (k, f) in clip.frames.iter().enumerate() {
        if f.len() != n {
            return Err(CaptionError::BadClip {
                clip: clip.clip.into(),
                frame: clip.frame,
                reason: format!("frame {k} of the clip has {} values, expected {}x{}x{}", f.len(), clip.channels, clip.height, clip.width),
            });
        }
    }
    Ok(())
}

/// Counts of a [`Fallback`] provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FallbackStats {
    pub ok: usize,
    /// Errors answered with the last good caption.
    pub fallbacks: usize,
    /// Errors with no good caption yet (answered with an error).
    pub failures: usize,
}

/// Wraps a provider: an error is logged and counted, and the last good caption is returned instead; with
/// no good caption yet, the error is returned (the caller runs without a caption).
pub struct Fallback<P> {
    inner: P,
    last: Option<String>,
    pub stats: FallbackStats,
}

impl<P: CaptionProvider> Fallback<P> {
    pub fn new(inner: P) -> Self {
        Fallback { inner, last: None, stats: FallbackStats::default() }
    }

    pub fn into_inner(self) -> P {
        self.inner
    }

    /// Forgets the last good caption (a new video starts: its captions must not come from another one).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

impl<P: CaptionProvider> CaptionProvider for Fallback<P> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn caption(&mut self, clip: &Clip) -> Result<String, CaptionError> {
        match self.inner.caption(clip) {
            Ok(c) => {
                self.stats.ok += 1;
                self.last = Some(c.clone());
                Ok(c)
            }
            Err(e) => match &self.last {
                Some(last) => {
                    self.stats.fallbacks += 1;
                    tracing::warn!(clip = clip.clip, frame = clip.frame, error = %e, fallbacks = self.stats.fallbacks, "caption failed; reusing the last good caption");
                    Ok(last.clone())
                }
                None => {
                    self.stats.failures += 1;
                    tracing::warn!(clip = clip.clip, frame = clip.frame, error = %e, "caption failed and there is no earlier caption");
                    Err(e)
                }
            },
        }
    }
}

impl<P: CaptionProvider + ?Sized> CaptionProvider for Box<P> {
    fn name(&self) -> String {
        (**self).name()
    }

    fn caption(&mut self, clip: &Clip) -> Result<String, CaptionError> {
        (**self).caption(clip)
    }
}
