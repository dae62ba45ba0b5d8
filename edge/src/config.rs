//! `edge.toml`: every setting of the runtime, with `--set section.key=value` overrides from the command
//! line applied to the TOML before it is read. Unknown keys are rejected by name.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alarm::AlarmConfig;
use crate::captions::CaptionBudget;

/// The whole configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Device name (MQTT topics, status); with a camera list, each camera's default device is
    /// `<device>-<name>`.
    pub device: String,
    pub model: ModelConfig,
    /// The one camera's source; or, instead, a list of cameras (`[[camera]]`) in one process.
    #[serde(default)]
    pub source: Option<SourceConfig>,
    #[serde(default, rename = "camera")]
    pub cameras: Option<Vec<crate::cameras::CameraConfig>>,
    #[serde(default)]
    pub alarm: AlarmConfig,
    #[serde(default)]
    pub captions: CaptionsConfig,
    #[serde(default)]
    pub sinks: SinksConfig,
    #[serde(default)]
    pub gpio: Option<GpioConfig>,
    #[serde(default)]
    pub health: HealthConfig,
    /// Alarm snapshots (JPEG with the region boxed) on MQTT and in bounded event folders; off
    /// when absent.
    #[serde(default)]
    pub snapshot: Option<crate::snapshot::SnapshotConfig>,
}

/// Which export to run and how.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Export directory (model.json + encoder.onnx + decoder.onnx); relative paths are relative to the
    /// config file.
    pub dir: PathBuf,
    #[serde(default)]
    pub backend: Backend,
    /// ONNX Runtime's execution provider.
    #[serde(default)]
    pub provider: Provider,
    #[serde(default = "one")]
    pub threads: usize,
    /// libonnxruntime.so (default: ORT_DYLIB_PATH).
    #[serde(default)]
    pub onnxruntime_library: Option<PathBuf>,
    /// TensorRT engine cache (persistent).
    #[serde(default)]
    pub trt_cache: Option<PathBuf>,
    #[serde(default)]
    pub trt_fp16: bool,
    #[serde(default)]
    pub trt_int8: bool,
    /// Run an int8 export on tract as configured. Off: tract runs the fp32 export beside it instead
    /// (tract runs int8 slower; see `setup::model_dir_for_backend`).
    #[serde(default)]
    pub tract_int8: bool,
    /// A recalibrated export's model.json (or its folder), e.g. from `sfn-host calibrate` on this
    /// scene's normal footage: its causal calibration replaces the export's. The network must be the
    /// same (encoder and decoder sha256 of the export that runs).
    #[serde(default)]
    pub calibration: Option<PathBuf>,
    /// Several cameras: run up to this many cameras' encoder (and decoder) calls as one batch (1: each
    /// camera calls the model on its own, the default). Pays on a GPU; on one CPU core batches
    /// measured slower than batch-1 calls, and scores differ from them in the last float bits.
    #[serde(default = "one")]
    pub max_batch: usize,
    /// With `max_batch` > 1: the longest a ready camera's call waits for the other cameras' (ms).
    #[serde(default = "batch_deadline_ms")]
    pub batch_deadline_ms: u64,
}

fn batch_deadline_ms() -> u64 {
    10
}

/// Which inference back-end runs the export.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// tract, pure Rust, CPU (the default build).
    #[default]
    Tract,
    /// ONNX Runtime, loaded at run time (the `ort` feature).
    Onnxruntime,
}

/// ONNX Runtime's execution provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    Tensorrt,
}

/// Where frames come from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A V4L2 camera (the `v4l` feature).
    V4l2,
    /// A folder of image files.
    Folder,
    /// A video file (the `video` feature).
    Video,
    /// A network stream: rtsp://, http(s):// (MJPEG), tcp:// or udp:// (MPEG-TS) (the `video` feature).
    Stream,
}

/// RTSP transport.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

/// V4L2 pixel formats.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum PixelFormat {
    Grey,
    Yuyv,
    Mjpg,
}

/// Caption providers (the `semantic` feature runs them).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CaptionProviderKind {
    /// No captions (models trained without them).
    #[default]
    None,
    /// The local motion describer.
    Motion,
    /// Captions from a JSON lines file (`captions.jsonl`).
    Jsonl,
    /// An OpenAI-compatible VLM endpoint (`captions.endpoint`).
    Openai,
}

impl std::fmt::Display for CaptionProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Motion => "motion",
            Self::Jsonl => "jsonl",
            Self::Openai => "openai",
        })
    }
}

fn one() -> usize {
    1
}

/// Where frames come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Device (/dev/video0), folder of frames, video file, or stream URL (credentials in it are never logged).
    pub path: PathBuf,
    /// Requested capture size and rate (V4L2), or the pacing rate of files.
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// V4L2 pixel format.
    #[serde(default)]
    pub pixel_format: Option<PixelFormat>,
    /// Files: play at `fps` (true) or as fast as possible.
    #[serde(default = "yes")]
    pub realtime: bool,
    /// Skip unreadable frames (counted) instead of stopping.
    #[serde(default = "yes")]
    pub skip_corrupt: bool,
    /// Files: timestamp of frame 0 in ms since the epoch (default: the wall clock at the first frame);
    /// fixed, replays give identical packets.
    #[serde(default)]
    pub start_time_ms: Option<u64>,
    /// Streams: give up opening or reading after this long without data, then reconnect with backoff.
    #[serde(default = "default_stream_timeout_ms")]
    pub timeout_ms: u64,
    /// Streams: RTSP over TCP (default) or UDP.
    #[serde(default)]
    pub rtsp_transport: RtspTransport,
}

impl SourceConfig {
    /// The frame rate and the stream timeout in range: (key under `source.`, reason) otherwise.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 1000.0) {
            return Err(("source.fps", format!("{}: must be in (0, 1000]", self.fps)));
        }
        if self.kind == SourceKind::Stream && self.timeout_ms == 0 {
            return Err(("source.timeout_ms", "must be at least 1 ms".into()));
        }
        Ok(())
    }
}

fn default_stream_timeout_ms() -> u64 {
    5000
}

fn default_fps() -> f64 {
    10.0
}
fn yes() -> bool {
    true
}

/// The caption stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptionsConfig {
    /// A model trained with captions needs one.
    #[serde(default)]
    pub provider: CaptionProviderKind,
    #[serde(default)]
    pub jsonl: Option<PathBuf>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub vlm_model: Option<String>,
    /// Frames handed to the provider: height, width (gray unless `rgb`).
    #[serde(default = "default_caption_size")]
    pub frame_size: [usize; 2],
    #[serde(default)]
    pub rgb: bool,
    /// Sentence encoder folder (default: where scripts/setup.sh unpacks all-MiniLM-L6-v2).
    #[serde(default)]
    pub encoder: Option<PathBuf>,
    #[serde(default)]
    pub budget: CaptionBudget,
}

fn default_caption_size() -> [usize; 2] {
    [120, 180]
}

impl Default for CaptionsConfig {
    fn default() -> Self {
        CaptionsConfig {
            provider: CaptionProviderKind::None,
            jsonl: None,
            endpoint: None,
            vlm_model: None,
            frame_size: default_caption_size(),
            rgb: false,
            encoder: None,
            budget: CaptionBudget::default(),
        }
    }
}

/// Where scores and alarms go.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SinksConfig {
    /// JSON lines of every scored frame and alarm on stdout.
    #[serde(default)]
    pub stdout: bool,
    /// COBS-framed binary score packets appended to this file.
    #[serde(default)]
    pub packet_file: Option<PathBuf>,
    /// JSON lines to this file.
    #[serde(default)]
    pub json_file: Option<PathBuf>,
    /// COBS-framed packets as UDP datagrams to host:port.
    #[serde(default)]
    pub udp: Option<String>,
    /// COBS-framed packets written to a serial device (configured beforehand, e.g. with stty).
    #[serde(default)]
    pub serial: Option<PathBuf>,
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
}

/// MQTT reporting (Frigate's topic conventions).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// TLS: CA certificate file (enables TLS), optional client certificate and key.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Alarms wait here while the broker is away.
    pub spool_dir: PathBuf,
    #[serde(default = "default_spool_max")]
    pub spool_max: usize,
    #[serde(default = "default_ring")]
    pub score_ring: usize,
    /// Home Assistant MQTT discovery (off unless this table is present).
    #[serde(default)]
    pub home_assistant: Option<HomeAssistantConfig>,
}

/// Home Assistant MQTT discovery: retained configs for an alarm `binary_sensor` and an anomaly-score
/// `sensor`, re-published when Home Assistant's birth message arrives.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistantConfig {
    /// Home Assistant's discovery prefix; its birth topic is `<discovery_prefix>/status`.
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    /// The device's name in Home Assistant (default: `device`).
    #[serde(default)]
    pub name: Option<String>,
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn default_mqtt_port() -> u16 {
    1883
}
fn default_prefix() -> String {
    "sfn".into()
}
fn default_spool_max() -> usize {
    1000
}
fn default_ring() -> usize {
    4096
}

/// Alarm output pin (linux character-device GPIO).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpioConfig {
    /// e.g. /dev/gpiochip0
    pub chip: PathBuf,
    pub line: u32,
    #[serde(default)]
    pub active_low: bool,
}

/// Health logging / status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    pub period_s: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { period_s: 10.0 }
    }
}

/// Config errors name the file, the key or the override.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("--set {arg}: {reason}")]
    Override { arg: String, reason: String },
    #[error("{path}: {key}: {reason}")]
    Invalid { path: PathBuf, key: &'static str, reason: String },
    #[error("{path}: camera[{index}] ({name:?}): {reason}")]
    Camera { path: PathBuf, index: usize, name: String, reason: String },
}

/// Applies `section.key=value` to a TOML table; the value is read as TOML (`3`, `true`, `"x"`,
/// `[1, 2]`), else taken as a string.
pub fn apply_override(doc: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |reason: &str| ConfigError::Override { arg: arg.into(), reason: reason.into() };
    let (path, raw) = arg.split_once('=').ok_or_else(|| err("expected section.key=value"))?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(err("empty key"));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}")).ok().and_then(|mut t| t.remove("v")).unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut table = doc;
    for k in &keys[..keys.len() - 1] {
        table = table.entry(k.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new())).as_table_mut().ok_or_else(|| err(&format!("{k} is not a section")))?;
    }
    table.insert(keys[keys.len() - 1].to_string(), value);
    Ok(())
}

impl EdgeConfig {
    /// Reads `path`, applies the overrides, checks the values; relative paths become relative to the
    /// config file's folder.
    pub fn load(path: &Path, overrides: &[String]) -> Result<EdgeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.into(), source })?;
        Self::parse(&text, path, overrides)
    }

    /// [`load`](Self::load) on text already read from `path` (`path` names the file in errors and is
    /// the base of relative paths; it is not read).
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<EdgeConfig, ConfigError> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.into(), reason: e.to_string() })?;
        for o in overrides {
            apply_override(&mut doc, o)?;
        }
        let mut cfg: EdgeConfig = toml::Value::Table(doc).try_into().map_err(|e: toml::de::Error| ConfigError::Parse { path: path.into(), reason: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        rel(&mut cfg.model.dir);
        if let Some(c) = cfg.model.calibration.as_mut() {
            rel(c);
        }
        for cam in cfg.cameras.iter_mut().flatten() {
            if let Some(c) = cam.calibration.as_mut() {
                rel(c);
            }
        }
        let sources = cfg.source.iter_mut().chain(cfg.cameras.iter_mut().flatten().filter_map(|c| c.source.as_mut()));
        for source in sources {
            if !matches!(source.kind, SourceKind::V4l2 | SourceKind::Stream) {
                rel(&mut source.path);
            }
        }
        if let Some(p) = cfg.captions.jsonl.as_mut() {
            rel(p);
        }
        if let Some(m) = cfg.sinks.mqtt.as_mut() {
            rel(&mut m.spool_dir);
        }
        if let Some(d) = cfg.snapshot.as_mut().and_then(|s| s.dir.as_mut()) {
            rel(d);
        }
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| Err(ConfigError::Invalid { path: path.into(), key, reason });
        if self.device.is_empty() || self.device.contains(['/', '+', '#']) {
            return bad("device", format!("{:?}: must be non-empty without '/', '+' or '#' (it is an MQTT topic level)", self.device));
        }
        match (&self.source, &self.cameras) {
            (Some(_), Some(_)) => return bad("source", "give either [source] (one camera) or a [[camera]] list, not both".into()),
            (None, None) => return bad("source", "missing: a [source] section (one camera) or a [[camera]] list".into()),
            (Some(source), None) => source.validate().map_err(|(key, reason)| ConfigError::Invalid { path: path.into(), key, reason })?,
            (None, Some(cameras)) => crate::cameras::validate(self, cameras, path)?,
        }
        if !(1..=64).contains(&self.model.max_batch) {
            return bad("model.max_batch", format!("{}: must be 1..=64", self.model.max_batch));
        }
        if !(1..=1000).contains(&self.model.batch_deadline_ms) {
            return bad("model.batch_deadline_ms", format!("{}: must be 1..=1000 (milliseconds)", self.model.batch_deadline_ms));
        }
        if !self.alarm.threshold.is_finite() {
            return bad("alarm.threshold", "must be a number".into());
        }
        let c = &self.captions;
        match c.provider {
            CaptionProviderKind::Jsonl if c.jsonl.is_none() => return bad("captions.jsonl", "the jsonl provider needs a file".into()),
            CaptionProviderKind::Openai if c.endpoint.is_none() => return bad("captions.endpoint", "the openai provider needs an endpoint URL".into()),
            _ => {}
        }
        if !(c.budget.max_share > 0.0 && c.budget.max_share <= 1.0) {
            return bad("captions.budget.max_share", format!("{}: must be in (0, 1]", c.budget.max_share));
        }
        if c.frame_size.iter().any(|&s| s < 8) {
            return bad("captions.frame_size", format!("{:?}: each side must be >= 8", c.frame_size));
        }
        if let Some(ha) = self.sinks.mqtt.as_ref().and_then(|m| m.home_assistant.as_ref()) {
            let p = &ha.discovery_prefix;
            if p.is_empty() || p.starts_with('/') || p.ends_with('/') || p.contains(['+', '#', '\0']) {
                return bad("sinks.mqtt.home_assistant.discovery_prefix", format!("{p:?}: must be a topic without + # and without a leading or trailing /"));
            }
        }
        if let Some(s) = &self.snapshot {
            s.validate().map_err(|(key, reason)| ConfigError::Invalid { path: path.into(), key, reason })?;
        }
        if !(self.health.period_s.is_finite() && self.health.period_s > 0.0) {
            return bad("health.period_s", format!("{}: must be > 0", self.health.period_s));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
device = "cam1"
[model]
dir = "model"
[source]
kind = "folder"
path = "frames"
"#;

    fn load(text: &str, overrides: &[&str]) -> Result<EdgeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.toml");
        std::fs::write(&p, text).unwrap();
        EdgeConfig::load(&p, &overrides.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn minimal_config_with_defaults_and_overrides() {
        let c = load(MIN, &["alarm.threshold=4.5", "source.fps=25", "captions.provider=motion", "sinks.udp=127.0.0.1:9000", "model.backend=\"onnxruntime\""]).unwrap();
        assert_eq!(c.alarm.threshold, 4.5);
        assert_eq!(c.alarm.raise_after, 3);
        assert_eq!(c.source.as_ref().unwrap().fps, 25.0);
        assert_eq!(c.captions.provider, CaptionProviderKind::Motion);
        assert_eq!(c.sinks.udp.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(c.model.backend, Backend::Onnxruntime);
        assert!(c.model.dir.ends_with("model") && c.model.dir.is_absolute());
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let e = load(&format!("{MIN}\n[alarm]\nthreshhold = 3\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("threshhold") && e.contains("edge.toml"), "{e}");
        let e = load(MIN, &["source.fsp=3"]).unwrap_err().to_string();
        assert!(e.contains("fsp"), "{e}");
        // A wrong value of an enumerated key names the key, the value and the valid values.
        let e = load(MIN, &["source.kind=webcam"]).unwrap_err().to_string();
        assert!(e.contains("source.kind") && e.contains("webcam") && e.contains("v4l2") && e.contains("folder") && e.contains("video"), "{e}");
        let e = load(MIN, &["model.backend=tensorflow"]).unwrap_err().to_string();
        assert!(e.contains("model.backend") && e.contains("tract") && e.contains("onnxruntime"), "{e}");
        let e = load(MIN, &["model.max_batch=0"]).unwrap_err().to_string();
        assert!(e.contains("model.max_batch") && e.contains("1..=64"), "{e}");
        let e = load(MIN, &["model.max_batch=8", "model.batch_deadline_ms=0"]).unwrap_err().to_string();
        assert!(e.contains("model.batch_deadline_ms"), "{e}");
        let e = load(MIN, &["model.provider=rocm"]).unwrap_err().to_string();
        assert!(e.contains("model.provider") && e.contains("tensorrt"), "{e}");
        let e = load(MIN, &["captions.provider=gpt"]).unwrap_err().to_string();
        assert!(e.contains("captions.provider") && e.contains("openai"), "{e}");
        let e = load(MIN, &["source.pixel_format=RGB3"]).unwrap_err().to_string();
        assert!(e.contains("source.pixel_format") && e.contains("MJPG"), "{e}");
        let e = load(MIN, &["captions.provider=jsonl"]).unwrap_err().to_string();
        assert!(e.contains("captions.jsonl"), "{e}");
        let e = load(MIN, &["novalue"]).unwrap_err().to_string();
        assert!(e.contains("--set novalue"), "{e}");
        let e = load(MIN, &["device=a/b"]).unwrap_err().to_string();
        assert!(e.contains("device"), "{e}");
        let e = load("device = \"x\"\n[model\n", &[]).unwrap_err().to_string();
        assert!(e.contains("edge.toml"), "{e}"); // Snapshot bounds: a disk bound of 0 and a negative interval name their keys.
        let e = load(MIN, &["snapshot.max_disk_mb=0"]).unwrap_err().to_string();
        assert!(e.contains("snapshot.max_disk_mb") && e.contains("edge.toml"), "{e}");
        let e = load(MIN, &["snapshot.min_interval_s=-1"]).unwrap_err().to_string();
        assert!(e.contains("snapshot.min_interval_s"), "{e}");
        let c = load(MIN, &["snapshot.dir=\"events\""]).unwrap();
        let s = c.snapshot.unwrap();
        assert!(s.dir.unwrap().is_absolute() && s.min_interval_s == 10.0, "relative to the config; defaults");
    }
}
