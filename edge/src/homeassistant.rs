//! Home Assistant MQTT discovery: the retained config messages that make a camera's alarm and anomaly
//! score appear in Home Assistant without hand-written YAML.
//!
//! Two entities (three with snapshots) under one device (`<discovery_prefix>/<component>/<node>/<object>/config`, node =
//! `sfn_<device>` with characters outside `[A-Za-z0-9_-]` replaced by `_`):
//! - `binary_sensor` `alarm` (device_class `problem`): state from `<prefix>/<device>/alarm/json`
//!   (`ON` when `state` is `raised`, `OFF` when `cleared`), the alarm JSON as its attributes.
//! - `sensor` `score`: `score_peak` (the highest causal score since the previous status) from the
//!   retained `<prefix>/<device>/status`, published every `health.period_s`.
//! - `camera` `snapshot` (with snapshots on): the retained JPEG on `<prefix>/<device>/alarm/snapshot`.
//!
//! All take availability from the retained `<prefix>/<device>/available` (`online` / `offline`, the
//! last will). A camera sharing another's MQTT connection (several cameras, one process) has no will
//! of its own: its entities also require the connection's availability topic (`availability_mode:
//! all`), so they go unavailable when the process dies. The device block names the model (its id: the first 4 bytes of the encoder's sha256)
//! and this software's version.

use serde_json::json;
use sfn_mqtt::{Discovery, Topics};

use crate::config::HomeAssistantConfig;

/// Characters Home Assistant accepts in node and object ids.
fn node_id(device: &str) -> String {
    let safe: String = device.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    format!("sfn_{safe}")
}

/// The discovery configs of a device reporting on `topics`, for the model with id `model_id`.
pub fn discovery(ha: &HomeAssistantConfig, device: &str, topics: &Topics, model_id: [u8; 4], snapshots: bool, will: Option<&str>) -> Discovery {
    let node = node_id(device);
    let model_hex: String = model_id.iter().map(|b| format!("{b:02x}")).collect();
    let dev = json!({
        "identifiers": [node],
        "name": ha.name.as_deref().unwrap_or(device),
        "manufacturer": "SFN-VAD",
        "model": "SFN-VAD video anomaly detector",
        "model_id": model_hex,
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let availability = match will {
        None => json!({ "availability_topic": topics.available, "payload_available": "online", "payload_not_available": "offline" }),
        Some(w) => json!({
            "availability": [
                { "topic": topics.available, "payload_available": "online", "payload_not_available": "offline" },
                { "topic": w, "payload_available": "online", "payload_not_available": "offline" },
            ],
            "availability_mode": "all",
        }),
    };
    let with_common = |mut v: serde_json::Value| {
        let o = v.as_object_mut().expect("an object literal");
        o.insert("device".into(), dev.clone());
        for (k, x) in availability.as_object().expect("an object literal") {
            o.insert(k.clone(), x.clone());
        }
        v
    };
    let alarm = with_common(json!({
        "name": "Anomaly alarm",
        "unique_id": format!("{node}_alarm"),
        "device_class": "problem",
        "state_topic": topics.alarm_json,
        "value_template": "{{ 'ON' if value_json.state == 'raised' else 'OFF' }}",
        "json_attributes_topic": topics.alarm_json,
    }));
    let score = with_common(json!({
        "name": "Anomaly score",
        "unique_id": format!("{node}_score"),
        "state_topic": topics.status,
        "value_template": "{{ value_json.score_peak }}",
        "state_class": "measurement",
        "json_attributes_topic": topics.status,
    }));
    let p = &ha.discovery_prefix;
    let mut messages = vec![(format!("{p}/binary_sensor/{node}/alarm/config"), alarm.to_string().into_bytes()), (format!("{p}/sensor/{node}/score/config"), score.to_string().into_bytes())];
    if snapshots {
        let camera = with_common(json!({
            "name": "Alarm snapshot",
            "unique_id": format!("{node}_snapshot"),
            "topic": topics.snapshot,
        }));
        messages.push((format!("{p}/camera/{node}/snapshot/config"), camera.to_string().into_bytes()));
    }
    Discovery { birth_topic: format!("{p}/status"), messages }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_the_devices_topics() {
        let ha = HomeAssistantConfig { discovery_prefix: "homeassistant".into(), name: Some("Door camera".into()) };
        let t = Topics::new("sfn", "door cam.1");
        let d = discovery(&ha, "door cam.1", &t, [0xde, 0xad, 0xbe, 0xef], false, None);
        assert_eq!(d.birth_topic, "homeassistant/status");
        let topics: Vec<&str> = d.messages.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(topics, ["homeassistant/binary_sensor/sfn_door_cam_1/alarm/config", "homeassistant/sensor/sfn_door_cam_1/score/config"]);
        let alarm: serde_json::Value = serde_json::from_slice(&d.messages[0].1).unwrap();
        assert_eq!(alarm["device_class"], "problem");
        assert_eq!(alarm["state_topic"], "sfn/door cam.1/alarm/json");
        assert_eq!(alarm["availability_topic"], "sfn/door cam.1/available");
        assert_eq!(alarm["unique_id"], "sfn_door_cam_1_alarm");
        assert_eq!(alarm["device"]["model_id"], "deadbeef");
        assert_eq!(alarm["device"]["name"], "Door camera");
        assert_eq!(alarm["device"]["sw_version"], env!("CARGO_PKG_VERSION"));
        let score: serde_json::Value = serde_json::from_slice(&d.messages[1].1).unwrap();
        assert_eq!(score["state_topic"], "sfn/door cam.1/status");
        assert_eq!(score["device"], alarm["device"]);
        // With snapshots: a camera entity on the retained snapshot topic.
        let d = discovery(&ha, "door cam.1", &t, [0xde, 0xad, 0xbe, 0xef], true, None);
        assert_eq!(d.messages.len(), 3);
        assert_eq!(d.messages[2].0, "homeassistant/camera/sfn_door_cam_1/snapshot/config");
        let cam: serde_json::Value = serde_json::from_slice(&d.messages[2].1).unwrap();
        assert_eq!((cam["topic"].as_str(), cam["availability_topic"].as_str()), (Some("sfn/door cam.1/alarm/snapshot"), Some("sfn/door cam.1/available")));
        // On another camera's connection: both availability topics, all required.
        let d = discovery(&ha, "door cam.1", &t, [0xde, 0xad, 0xbe, 0xef], false, Some("sfn/site-gate/available"));
        let alarm: serde_json::Value = serde_json::from_slice(&d.messages[0].1).unwrap();
        assert_eq!(alarm["availability_mode"], "all");
        assert_eq!(alarm["availability"][0]["topic"], "sfn/door cam.1/available");
        assert_eq!(alarm["availability"][1]["topic"], "sfn/site-gate/available");
        assert!(alarm.get("availability_topic").is_none());
    }
}
