//! Several cameras in one process: the `[[camera]]` list of the config, its checks, and its expansion
//! into one single-camera config per camera (the runtime then runs each on its own thread, all on one
//! loaded copy of the model where the back-end can share it).
//!
//! ```toml
//! device = "site1"
//! [model]
//! dir = "/usr/share/sfn-vad/models/ped2-cpu"
//! # max_batch = 8               # on a GPU: the cameras' model calls batched (see docs/deployment.md)
//! [[camera]]
//! name = "gate"                 # device id "site1-gate" unless `device` is given
//! threshold = 3.2               # optional: this camera's alarm threshold
//! calibration = "gate-cal/model.json"  # optional: this scene's calibration (`sfn-host calibrate`)
//! [camera.source]
//! kind = "stream"
//! path = "rtsp://viewer:secret@10.0.0.5/stream1"
//! [[camera]]
//! name = "yard"
//! [camera.source]
//! kind = "v4l2"
//! path = "/dev/video0"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, EdgeConfig, SourceConfig};

/// One camera of a multi-camera config.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Unique within the config.
    pub name: String,
    /// Its device id (MQTT topics, status, file names); default `<device>-<name>`.
    #[serde(default)]
    pub device: Option<String>,
    pub source: Option<SourceConfig>,
    /// Its alarm threshold (default: `alarm.threshold`).
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Its scene's causal calibration (default: `model.calibration`, else the export's): a
    /// recalibrated export's model.json, as `model.calibration`.
    #[serde(default)]
    pub calibration: Option<PathBuf>,
}

impl CameraConfig {
    /// The device id this camera reports as.
    pub fn device_id(&self, site: &str) -> String {
        self.device.clone().unwrap_or_else(|| format!("{site}-{}", self.name))
    }
}

/// Whether `s` can be an MQTT topic level and a file name part.
fn topic_level(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#', '\0']) && s != "." && s != ".."
}

/// Checks the camera list of `cfg`: not empty; every camera named, with a source, unique name and
/// device id; and the sinks and outputs one process can share between cameras.
pub fn validate(cfg: &EdgeConfig, cameras: &[CameraConfig], path: &Path) -> Result<(), ConfigError> {
    let invalid = |key: &'static str, reason: &str| Err(ConfigError::Invalid { path: path.into(), key, reason: reason.into() });
    if cameras.is_empty() {
        return invalid("camera", "an empty camera list: give at least one [[camera]] (or a [source] section)");
    }
    if cameras.len() > 1 {
        if cfg.sinks.serial.is_some() {
            return invalid("sinks.serial", "one serial port cannot carry several cameras (packets name no camera): use MQTT or a file per camera");
        }
        if cfg.sinks.udp.is_some() {
            return invalid("sinks.udp", "one UDP address cannot carry several cameras (packets name no camera): use MQTT or a file per camera");
        }
        if cfg.gpio.is_some() {
            return invalid("gpio", "one alarm pin for several cameras is not supported: run the pin's camera in its own process");
        }
    }
    for (index, cam) in cameras.iter().enumerate() {
        let fail = |reason: String| Err(ConfigError::Camera { path: path.into(), index, name: cam.name.clone(), reason });
        if !topic_level(&cam.name) {
            return fail("name: must be non-empty without '/', '+' or '#'".into());
        }
        let device = cam.device_id(&cfg.device);
        if !topic_level(&device) {
            return fail(format!("device {device:?}: must be non-empty without '/', '+' or '#' (it is an MQTT topic level)"));
        }
        let Some(source) = &cam.source else { return fail("no [camera.source]".into()) };
        if let Err((key, reason)) = source.validate() {
            return fail(format!("{key}: {reason}"));
        }
        if cam.threshold.is_some_and(|t| !t.is_finite()) {
            return fail("threshold: must be a number".into());
        }
        for (j, other) in cameras[..index].iter().enumerate() {
            if other.name == cam.name {
                return fail(format!("name already used by camera[{j}]"));
            }
            if other.device_id(&cfg.device) == device {
                return fail(format!("device {device:?} already used by camera[{j}] ({:?})", other.name));
            }
        }
    }
    Ok(())
}

/// `path` with `-<device>` before its extension: `alarms.jsonl` -> `alarms-gate.jsonl`.
fn per_camera(path: &Path, device: &str) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{device}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{device}"),
    };
    path.with_file_name(name)
}

/// One single-camera config per camera of a checked config (the config itself when it has one
/// camera given as `[source]`): the camera's device id and source, its threshold, file sinks named
/// after its device id, and an MQTT spool of its own under `spool_dir`.
pub fn expand(cfg: &EdgeConfig) -> Vec<EdgeConfig> {
    let Some(cameras) = &cfg.cameras else { return vec![cfg.clone()] };
    cameras
        .iter()
        .map(|cam| {
            let device = cam.device_id(&cfg.device);
            let mut c = cfg.clone();
            c.cameras = None;
            c.source = cam.source.clone();
            if let Some(t) = cam.threshold {
                c.alarm.threshold = t;
            }
            if let Some(cal) = &cam.calibration {
                c.model.calibration = Some(cal.clone());
            }
            if let Some(p) = c.sinks.json_file.as_mut() {
                *p = per_camera(p, &device);
            }
            if let Some(p) = c.sinks.packet_file.as_mut() {
                *p = per_camera(p, &device);
            }
            if let Some(m) = c.sinks.mqtt.as_mut() {
                m.spool_dir = m.spool_dir.join(&device);
            }
            // One event folder root for all cameras (folder names end in the device), its disk
            // bound shared equally.
            if let Some(sn) = c.snapshot.as_mut() {
                sn.max_disk_mb /= cameras.len().max(1) as f64;
            }
            c.device = device;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "device = \"site\"\n[model]\ndir = \"m\"\n[sinks]\njson_file = \"out/alarms.jsonl\"\n";

    fn camera(name: &str, extra: &str) -> String {
        format!("[[camera]]\nname = \"{name}\"\n{extra}[camera.source]\nkind = \"folder\"\npath = \"clips/{name}\"\n")
    }

    fn parse(text: &str) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::parse(text, Path::new("/etc/sfn/edge.toml"), &[])
    }

    #[test]
    fn a_camera_list_expands_into_one_config_per_camera() {
        let text = format!("{BASE}{}{}", camera("gate", "threshold = 2.5\n"), camera("yard", "device = \"yard-cam\"\n"));
        let cfg = parse(&text).unwrap();
        let cams = expand(&cfg);
        assert_eq!(cams.len(), 2);
        assert_eq!((cams[0].device.as_str(), cams[1].device.as_str()), ("site-gate", "yard-cam"));
        assert_eq!(cams[0].alarm.threshold, 2.5);
        assert_eq!(cams[1].alarm.threshold, cfg.alarm.threshold);
        assert_eq!(cams[0].source.as_ref().unwrap().path, Path::new("/etc/sfn/clips/gate"));
        assert_eq!(cams[1].sinks.json_file.as_deref(), Some(Path::new("out/alarms-yard-cam.jsonl")));
        assert!(cams.iter().all(|c| c.cameras.is_none()));
        // A one-camera config is itself.
        let single = parse("device = \"cam\"\n[model]\ndir = \"m\"\n[source]\nkind = \"folder\"\npath = \"f\"\n").unwrap();
        assert_eq!(expand(&single), vec![single.clone()]);
    }

    #[test]
    fn bad_camera_lists_are_refused_with_the_camera_named() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        let e = err(&format!("camera = []\n{BASE}"));
        assert!(e.contains("camera") && e.contains("empty"), "{e}");
        let e = err(&format!("{BASE}{}{}", camera("gate", ""), camera("gate", "")));
        assert!(e.contains("camera[1] (\"gate\")") && e.contains("name already used by camera[0]"), "{e}");
        let e = err(&format!("{BASE}{}{}", camera("gate", "device = \"x\"\n"), camera("yard", "device = \"x\"\n")));
        assert!(e.contains("camera[1] (\"yard\")") && e.contains("device \"x\" already used by camera[0]"), "{e}");
        let e = err(&format!("{BASE}{}[[camera]]\nname = \"back\"\n", camera("gate", "")));
        assert!(e.contains("camera[1] (\"back\")") && e.contains("no [camera.source]"), "{e}");
        let e = err(&format!("{BASE}{}", camera("g/ate", "")));
        assert!(e.contains("camera[0]") && e.contains("name"), "{e}");
        let e = err(&format!("{BASE}[source]\nkind = \"folder\"\npath = \"f\"\n{}", camera("gate", "")));
        assert!(e.contains("not both"), "{e}");
        let e = err(BASE);
        assert!(e.contains("source") && e.contains("missing"), "{e}");
        let e = err(&format!("{BASE}{}", camera("gate", "").replace("path = ", "fps = 0\npath = ")));
        assert!(e.contains("camera[0]") && e.contains("source.fps"), "{e}");
        let e = err(&format!("device = \"site\"\n[model]\ndir = \"m\"\n[sinks]\nudp = \"127.0.0.1:9000\"\n{}{}", camera("a", ""), camera("b", "")));
        assert!(e.contains("sinks.udp"), "{e}");
    }
}
